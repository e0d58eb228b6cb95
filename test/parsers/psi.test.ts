import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePressure } from '../../src/parsers/psi.js';
import { fixture, live } from './fixtures.js';

describe('parsePressure', () => {
  it('parses this machine\'s real /proc/pressure/memory', () => {
    const text = live('/proc/pressure/memory');
    if (text === null) {
      console.warn('no /proc/pressure/memory on this machine (kernel without PSI): live check skipped');
      return;
    }
    const r = parsePressure(text);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const total = Number(/^some .* total=(\d+)$/m.exec(text)![1]);
    expect(r.value.some.total).toBe(total);
    expect(r.value.full).not.toBeNull();
  });

  it('parses a stalling capture exactly', () => {
    expect(parsePressure(fixture('host-6.18-pressure/pressure/memory'))).toEqual({
      ok: true,
      value: {
        some: { avg10: 8.67, avg60: 2.26, avg300: 0.5, total: 1553970 },
        full: { avg10: 3.03, avg60: 0.73, avg300: 0.16, total: 533787 },
      },
    });
  });

  it('accepts a file without a "full" line (cpu before Linux 5.13)', () => {
    const r = parsePressure(fixture('cpu-pressure-some-only'));
    expect(r).toMatchObject({ ok: true, value: { some: { avg10: 1.5, total: 912345 }, full: null } });
  });

  it.each([
    ['bad/pressure-over-100', 'pressure: some average above 100%'],
    ['bad/pressure-negative-total', /line 1 is not/],
    ['bad/pressure-truncated', /line 1 is not/],
    ['bad/binary', /NUL|line 1/],
    ['host-6.18-noswap/meminfo', /too large/],
    ['guest-5.10-swap/uptime', /line 1 is not/],
  ])('rejects %s', (file, message) => {
    const r = parsePressure(fixture(file));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(message);
  });

  it('rejects a missing "some" line and duplicates', () => {
    const full = 'full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';
    expect(parsePressure(full)).toEqual({ ok: false, error: 'pressure: missing "some" line' });
    expect(parsePressure(full + full)).toEqual({ ok: false, error: 'pressure: duplicate "full" line' });
  });

  it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void parsePressure(s)), { numRuns: 2000 });
  });

  it('round-trips generated lines', () => {
    const avg = fc.integer({ min: 0, max: 10000 }).map((n) => n / 100);
    const total = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(avg, avg, avg, total, (a, b, c, t) => {
        const line = `some avg10=${a.toFixed(2)} avg60=${b.toFixed(2)} avg300=${c.toFixed(2)} total=${t}\n`;
        expect(parsePressure(line)).toEqual({ ok: true, value: { some: { avg10: a, avg60: b, avg300: c, total: t }, full: null } });
      }),
    );
  });
});
