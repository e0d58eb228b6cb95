import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseMeminfo, MEMINFO_MAX_BYTES } from '../../src/parsers/meminfo.js';
import { fixture, live } from './fixtures.js';

/** Reference extraction, written independently of the parser: grep-style lookup of "Key: N kB". */
function grepKib(text: string, key: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${key}:`));
  return line === undefined ? undefined : Number(line.slice(key.length + 1).replace('kB', '').trim());
}

describe('parseMeminfo', () => {
  it('parses this machine\'s real /proc/meminfo, agreeing with a grep of the same text', () => {
    const text = live('/proc/meminfo');
    expect(text).not.toBeNull();
    const r = parseMeminfo(text!);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.memTotal).toBe(grepKib(text!, 'MemTotal'));
    expect(r.value.memAvailable).toBe(grepKib(text!, 'MemAvailable'));
    expect(r.value.committedAS).toBe(grepKib(text!, 'Committed_AS'));
    expect(r.value.activeFile).toBe(grepKib(text!, 'Active(file)'));
    expect(r.value.memAvailableEstimated).toBe(false);
  });

  it.each(['host-6.18-noswap', 'host-6.18-pressure', 'guest-5.10-swap', 'guest-4.19-nopsi'])('parses fixture %s field by field', (dir) => {
    const text = fixture(`${dir}/meminfo`);
    const r = parseMeminfo(text);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const pairs: [keyof typeof r.value, string][] = [
      ['memTotal', 'MemTotal'], ['memFree', 'MemFree'], ['memAvailable', 'MemAvailable'], ['buffers', 'Buffers'],
      ['cached', 'Cached'], ['activeFile', 'Active(file)'], ['inactiveFile', 'Inactive(file)'], ['shmem', 'Shmem'],
      ['sReclaimable', 'SReclaimable'], ['sUnreclaim', 'SUnreclaim'], ['anonPages', 'AnonPages'], ['mlocked', 'Mlocked'],
      ['swapTotal', 'SwapTotal'], ['swapFree', 'SwapFree'], ['committedAS', 'Committed_AS'],
    ];
    for (const [field, key] of pairs) expect([key, r.value[field]]).toEqual([key, grepKib(text, key)]);
  });

  it('reads swap in use from the swap fixture', () => {
    const r = parseMeminfo(fixture('guest-5.10-swap/meminfo'));
    expect(r.ok && r.value.swapTotal - r.value.swapFree).toBe(1048572 - 803320);
  });

  it('does not confuse SwapCached with Cached (meminfo-writer compares 8 bytes for this)', () => {
    const r = parseMeminfo(fixture('guest-5.10-swap/meminfo'));
    expect(r.ok && r.value.cached).toBe(171504);
  });

  it('estimates MemAvailable on kernels before 3.14 and says so', () => {
    const text = 'MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n';
    const r = parseMeminfo(text);
    expect(r).toMatchObject({ ok: true, value: { memAvailable: 310, memAvailableEstimated: true, committedAS: 0 } });
  });

  it.each([
    ['bad/meminfo-truncated', /line 26 is not "Key: value \[kB\]": "SRe"/],
    ['bad/meminfo-garbage', /line 1 is not/],
    ['bad/binary', /line 1 is not|NUL/],
    ['bad/meminfo-overflow', /MemFree is out of range/],
    ['bad/meminfo-no-memtotal', /missing MemTotal/],
    ['guest-5.10-swap/vmstat', /line 1 is not/],
  ])('rejects %s with a clear error', (file, message) => {
    const r = parseMeminfo(fixture(file));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it('rejects empty, oversized, duplicated and inconsistent input', () => {
    expect(parseMeminfo('')).toEqual({ ok: false, error: 'meminfo: input is empty' });
    expect(parseMeminfo('x'.repeat(MEMINFO_MAX_BYTES + 1))).toMatchObject({ ok: false, error: expect.stringMatching(/too large/) });
    const base = 'MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 1 kB\nCached: 1 kB\n';
    expect(parseMeminfo(`${base}MemFree: 5 kB\n`)).toMatchObject({ ok: false, error: 'meminfo: duplicate field MemFree' });
    expect(parseMeminfo(base.replace('MemFree: 100', 'MemFree: 2000'))).toMatchObject({ ok: false, error: 'meminfo: MemFree exceeds MemTotal' });
    expect(parseMeminfo(`${base}SwapTotal: 1 kB\nSwapFree: 2 kB\n`)).toMatchObject({ ok: false, error: 'meminfo: SwapFree exceeds SwapTotal' });
    expect(parseMeminfo(base.replace('MemTotal: 1000', 'MemTotal: 0'))).toMatchObject({ ok: false, error: 'meminfo: MemTotal is 0' });
  });

  it('keeps error messages short and printable whatever the input', () => {
    const r = parseMeminfo(`MemTotal: 1 kB\n\x1b[31m${'A'.repeat(500)}\n`);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.length).toBeLessThan(200);
      expect(r.error).not.toMatch(/[\x00-\x1f]/);
    }
  });

  it('never throws on arbitrary text, and every success has MemFree ≤ MemTotal', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const r = parseMeminfo(s);
        if (r.ok) expect(r.value.memFree).toBeLessThanOrEqual(r.value.memTotal);
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips any well-formed meminfo generated from values', () => {
    const kib = fc.integer({ min: 0, max: 2 ** 40 });
    fc.assert(
      fc.property(kib, kib, kib, kib, (a, b, c, d) => {
        const [free, total] = a <= b ? [a, b + 1] : [b, a + 1];
        const text = `MemTotal:  ${total} kB\nMemFree: ${free} kB\nBuffers: ${c} kB\nCached:   ${d} kB\nHugePages_Total:  7\n`;
        const r = parseMeminfo(text);
        expect(r).toMatchObject({ ok: true, value: { memTotal: total, memFree: free, buffers: c, cached: d } });
      }),
    );
  });
});
