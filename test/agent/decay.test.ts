import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decayReportAt, decayedPastLevel, msUntilBelow, nextLevelDown, periodsUntilBelow, PSI_PERIOD_MS, type AvgKey } from '../../domU-agent/src/decay.js';
import { EXP, shown, step } from './kernel-psi.js';

/** Periods until the kernel model, from hidden fixed-point state `fixed`, prints below `level`. */
function kernelPeriods(fixed: number, level: number, key: AvgKey): number {
  let n = 0;
  while (shown(fixed) >= level) {
    fixed = step(fixed, EXP[key]);
    if (++n > 100_000) throw new Error('no decay');
  }
  return n;
}

const key = fc.constantFrom<AvgKey>('avg10', 'avg60', 'avg300');

describe('PSI decay maths', () => {
  it('never wakes before the kernel prints a value below the level, whatever hidden state the printed value came from', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 * 2048 }), fc.integer({ min: 1, max: 9999 }).map((n) => n / 100), key, (fixed, level, k) => {
        const avg = shown(fixed);
        const ours = periodsUntilBelow(avg, level, k);
        expect(ours).toBeGreaterThanOrEqual(kernelPeriods(fixed, level, k));
      }),
      { numRuns: 3000 },
    );
  });

  it('is exact for the largest hidden state, so it is never later than the printed value allows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 * 2048 }), fc.integer({ min: 1, max: 9999 }).map((n) => n / 100), key, (fixed, level, k) => {
        const avg = shown(fixed);
        let top = fixed;
        while (shown(top + 1) === avg) top++; // the largest state printing the same value
        expect(periodsUntilBelow(avg, level, k)).toBe(kernelPeriods(top, level, k));
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the textbook figure: avg10 halves in about 10·ln 2 ≈ 7 s, avg60 in about 42 s', () => {
    expect(periodsUntilBelow(40, 20, 'avg10')).toBe(4);
    expect(msUntilBelow(40, 20, 'avg10')).toBeGreaterThanOrEqual(4 * PSI_PERIOD_MS);
    expect(msUntilBelow(40, 20, 'avg10')).toBeLessThan(5 * PSI_PERIOD_MS);
    expect(periodsUntilBelow(40, 20, 'avg60')).toBe(21);
  });

  it('is 0 for a value already below, and never for a level of 0', () => {
    expect(periodsUntilBelow(0.05, 0.1, 'avg10')).toBe(0);
    expect(msUntilBelow(0.05, 0.1, 'avg10')).toBe(0);
    expect(msUntilBelow(5, 0, 'avg10')).toBe(Infinity);
  });

  it('steps down by halves and stops at the calm level', () => {
    expect(nextLevelDown(40, 0.1)).toBe(20);
    expect(nextLevelDown(0.15, 0.1)).toBe(0.1);
    expect(nextLevelDown(0.05, 0.1)).toBeNull();
  });

  it('schedules the decay report for whichever average crosses its level first', () => {
    // avg10 20 → 10 takes 4 periods; avg60 1 → 0.5 takes ~21: avg10 wins.
    expect(decayReportAt(1000, { avg10: 20, avg60: 1 }, 0.1)).toBe(1000 + msUntilBelow(20, 10, 'avg10'));
    expect(decayReportAt(0, { avg10: 0.05, avg60: 3 }, 0.1)).toBe(msUntilBelow(3, 1.5, 'avg60'));
    expect(decayReportAt(0, { avg10: 0, avg60: 0.09 }, 0.1)).toBeNull();
  });

  it('recognises the crossing on values as the kernel prints them', () => {
    let v10 = 20 * 2048;
    for (let i = 0; i < periodsUntilBelow(20, 10, 'avg10'); i++) v10 = step(v10, EXP.avg10);
    expect(decayedPastLevel({ avg10: 20, avg60: 0 }, { avg10: shown(v10), avg60: 0 }, 0.1)).toBe(true);
    expect(decayedPastLevel({ avg10: 20, avg60: 0 }, { avg10: 10.5, avg60: 0 }, 0.1)).toBe(false);
  });
});
