import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseGuestReport, encodeGuestReport } from '../../src/schemas/report.js';
import { SimGuest } from '../../dom0/sim/guest.js';
import { balloonAttempt } from '../../dom0/sim/balloon.js';
import { BalloonSchema } from '../../dom0/sim/scenario.js';

const MiB = 1024;
const guest = (swapMiB = 512) => new SimGuest({ gapKib: 60 * MiB, swapKib: swapMiB * MiB, coldCacheKib: 200 * MiB });
const demand = (anonMiB: number, cacheMiB: number) => ({ anonKib: anonMiB * MiB, cacheWsKib: cacheMiB * MiB, commitKib: (anonMiB + 100) * MiB });
const run = (g: SimGuest, allocMiB: number, d: ReturnType<typeof demand>, seconds: number) => {
  for (let i = 0; i < seconds * 10; i++) g.step(allocMiB * MiB, d, 0.1);
};

describe('simulated Linux guest', () => {
  it('does not stall with its working set resident, and reports what Linux would', () => {
    const g = guest();
    const d = demand(400, 200);
    run(g, 1024, d, 30);
    expect(g.counters.stallSomeUs).toBe(0);
    expect(g.needKib()).toBeLessThan(1024 * MiB);
    const r = g.report(1, 30_000, { curKib: 1024 * MiB, tgtKib: 1024 * MiB });
    const parsed = parseGuestReport(encodeGuestReport(r));
    expect(parsed.ok).toBe(true);
    expect(r.total).toBe((1024 - 60) * MiB); // MemTotal sits the gap below the Xen allocation
    expect(r.anon).toBe(400 * MiB);
    expect(r.free + r.cache + r.anon + r.buf + r.srec + r.sunrec).toBeLessThanOrEqual(r.total);
    expect(r.psi!.s10).toBe(0);
  });

  it('stalls, refaults and swaps when the allocation is below its working set; PSI rises then decays', () => {
    const g = guest();
    const d = demand(700, 300);
    run(g, 1200, d, 5); // 700 + 300 + ~130 kernel, reserve and gap: fits
    expect(g.counters.stallSomeUs).toBe(0);
    run(g, 700, d, 20); // balloon took memory below anon + cache working set
    expect(g.counters.stallSomeUs).toBeGreaterThan(1e6);
    expect(g.counters.swapOutKib).toBeGreaterThan(0);
    expect(g.counters.refaultKib).toBeGreaterThan(0);
    const under = g.report(2, 25_000, { curKib: 700 * MiB, tgtKib: 700 * MiB });
    expect(under.psi!.s10).toBeGreaterThan(10);
    expect(under.swfree).toBeLessThan(under.swtot);
    run(g, 1400, d, 60); // memory given back: swap drains, stall stops, avg10 decays
    const after = g.report(3, 85_000, { curKib: 1400 * MiB, tgtKib: 1400 * MiB });
    expect(after.swfree).toBe(after.swtot);
    expect(after.psi!.s10).toBeLessThan(1);
    expect(after.psi!.stot).toBe(under.psi!.stot); // no new stall once the working set fits
  });

  it('OOM-kills when anonymous demand exceeds memory + swap (and not before)', () => {
    const g = guest(256);
    run(g, 600, demand(500, 50), 10);
    expect(g.counters.oomKills).toBe(0);
    run(g, 600, demand(1000, 50), 1);
    expect(g.counters.oomKills).toBeGreaterThan(0);
  });

  it('any allocation and demand give a report the manager accepts (property)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 64 * 1024 }), fc.integer({ min: 0, max: 32 * 1024 }), fc.integer({ min: 0, max: 8 * 1024 }),
      (allocMiB, anonMiB, cacheMiB) => {
        const g = guest();
        run(g, allocMiB, demand(anonMiB, cacheMiB), 1);
        const r = g.report(1, 1000, { curKib: allocMiB * MiB, tgtKib: null });
        return parseGuestReport(encodeGuestReport(r)).ok;
      },
    ), { numRuns: 200 });
  });
});

describe('fake balloon drivers', () => {
  const spec = (o: object) => BalloonSchema.parse(o);
  const s = (actualMiB: number, targetMiB: number | null) => ({ actualKib: actualMiB * MiB, targetKib: targetMiB === null ? null : targetMiB * MiB, hardFloorKib: 100 * MiB });

  it('ideal: down at ~120 MiB/s, up fast, stops on target', () => {
    expect(balloonAttempt(spec({}), s(1000, 500), 0, 1)).toBe(-120 * MiB);
    expect(balloonAttempt(spec({}), s(500, 1000), 0, 1)).toBe(500 * MiB);
    expect(balloonAttempt(spec({}), s(500, 500), 0, 1)).toBe(0);
    expect(balloonAttempt(spec({}), s(500, null), 0, 1)).toBe(0);
  });

  it('hidden lower and upper limits, the hard floor, stuck and intermittently stuck', () => {
    expect(balloonAttempt(spec({ kind: 'lower-limit', limitMiB: 800 }), s(1000, 500), 0, 10)).toBe(-200 * MiB);
    expect(balloonAttempt(spec({ kind: 'upper-limit', limitMiB: 700 }), s(500, 1000), 0, 10)).toBe(200 * MiB);
    expect(balloonAttempt(spec({ kind: 'upper-limit', limitMiB: 700 }), s(800, 1000), 0, 10)).toBe(0);
    expect(balloonAttempt(spec({}), s(300, 50), 0, 10)).toBe(-200 * MiB); // never below the guest's hard floor
    expect(balloonAttempt(spec({ kind: 'stuck' }), s(1000, 500), 0, 1)).toBe(0);
    const flaky = spec({ kind: 'intermittent', intervalS: 5 });
    expect(balloonAttempt(flaky, s(1000, 500), 2000, 1)).toBe(0);
    expect(balloonAttempt(flaky, s(1000, 500), 7000, 1)).toBe(-120 * MiB);
  });
});
