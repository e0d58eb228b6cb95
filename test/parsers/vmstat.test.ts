import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseVmstat, VMSTAT_MAX_BYTES } from '../../src/parsers/vmstat.js';
import { fixture, live } from './fixtures.js';

function grep(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('parseVmstat', () => {
  it('parses this machine\'s real /proc/vmstat', () => {
    const text = live('/proc/vmstat')!;
    const r = parseVmstat(text);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.pswpin).toBe(grep(text, 'pswpin'));
    expect(r.value.refaultFile).toBe(grep(text, 'workingset_refault_file') ?? grep(text, 'workingset_refault'));
  });

  it('reads the split anon/file refault counters and swap traffic (Linux ≥ 5.9)', () => {
    expect(parseVmstat(fixture('guest-5.10-swap/vmstat'))).toEqual({
      ok: true,
      value: { refaultAnon: 184223, refaultFile: 2291870, pswpin: 96112, pswpout: 158840 },
    });
  });

  it('maps the older single workingset_refault counter to file refaults (Linux < 5.9)', () => {
    expect(parseVmstat(fixture('guest-4.19-nopsi/vmstat'))).toEqual({
      ok: true,
      value: { refaultAnon: 0, refaultFile: 330921, pswpin: 0, pswpout: 0 },
    });
  });

  it('reads counters a kernel lacks as 0', () => {
    expect(parseVmstat('nr_free_pages 12\n')).toEqual({ ok: true, value: { refaultAnon: 0, refaultFile: 0, pswpin: 0, pswpout: 0 } });
  });

  it('tolerates a negative gauge it does not use, but not one it uses', () => {
    expect(parseVmstat('nr_zone_write_pending -3\npswpin 4\n')).toMatchObject({ ok: true, value: { pswpin: 4 } });
    expect(parseVmstat('pswpin -3\n')).toEqual({ ok: false, error: 'vmstat: pswpin is out of range' });
  });

  it.each([
    ['bad/vmstat-not-a-number', /line \d+ is not "name value": "pswpin lots"/],
    ['bad/binary', /NUL|line 1/],
    ['bad/meminfo-garbage', /line 1 is not/],
    ['host-6.18-noswap/meminfo', /line 1 is not/],
  ])('rejects %s', (file, message) => {
    const r = parseVmstat(fixture(file));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it('rejects oversized input, duplicates and overflow', () => {
    expect(parseVmstat('a 1\n'.repeat(VMSTAT_MAX_BYTES))).toMatchObject({ ok: false, error: expect.stringMatching(/too large/) });
    expect(parseVmstat('pswpin 1\npswpin 2\n')).toEqual({ ok: false, error: 'vmstat: duplicate counter pswpin' });
    expect(parseVmstat('pswpout 18446744073709551615\n')).toEqual({ ok: false, error: 'vmstat: pswpout is out of range' });
  });

  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void parseVmstat(s)), { numRuns: 2000 });
  });
});
