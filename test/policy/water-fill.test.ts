import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { waterFill } from '../../src/policy/water-fill.js';

/** The rule by definition: λ found by bisection on Σ min(cap, max(0, λ·share − offset)) = amount. */
function reference(caps: number[], shares: number[], amount: number, offsets: number[] = caps.map(() => 0)): number[] {
  const total = caps.reduce((a, c) => a + Math.max(0, c), 0);
  if (amount <= 0) return caps.map(() => 0);
  if (total <= amount) return caps.map((c) => Math.max(0, Math.floor(c)));
  const takes = (i: number) => caps[i]! > 0 && shares[i]! > 0;
  // Items without a share take nothing; if the others' caps fit, they are simply full. (Without
  // this the doubling below never ends when f is bounded under the amount.)
  const eligible = caps.reduce((a, c, i) => a + (takes(i) ? c : 0), 0);
  if (eligible <= amount) return caps.map((c, i) => (takes(i) ? Math.floor(c) : 0));
  const part = (i: number, l: number) => Math.min(caps[i]!, Math.max(0, l * shares[i]! - offsets[i]!));
  const f = (l: number) => caps.reduce((s, _c, i) => s + (takes(i) ? part(i, l) : 0), 0);
  let lo = 0;
  let hi = 1;
  while (f(hi) < amount) hi *= 2;
  for (let k = 0; k < 200; k++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < amount) lo = mid;
    else hi = mid;
  }
  return caps.map((_c, i) => (takes(i) ? part(i, hi) : 0));
}

describe('waterFill', () => {
  it('equal shares of the cap: the same fraction for everyone', () => {
    expect([...waterFill([100, 200, 300], [100, 200, 300], 300)]).toEqual([50, 100, 150]);
  });
  it('small caps saturate, the rest is shared by share', () => {
    expect([...waterFill([10, 1000, 1000], [1, 1, 3], 410)]).toEqual([10, 100, 300]);
  });
  it('everyone full when the amount suffices; nothing for nothing', () => {
    expect([...waterFill([10, 20], [1, 1], 1000)]).toEqual([10, 20]);
    expect([...waterFill([10, 20], [1, 1], 0)]).toEqual([0, 0]);
    expect([...waterFill([10, 20], [0, 1], 15)]).toEqual([0, 15]);
    expect([...waterFill([100, 100], [0, 1], 150)]).toEqual([0, 100]);
    expect([...waterFill([100], [0], 50)]).toEqual([0]);
  });
  it('matches the definition, never exceeds the amount or a cap (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: 0, max: 50 })), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 2e8 }),
        (items, amount) => {
          const caps = items.map(([c]) => c);
          const shares = items.map(([c, w]) => c * w);
          const got = [...waterFill(caps, shares, amount)];
          const want = reference(caps, shares, amount);
          expect(got.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(amount);
          got.forEach((g, i) => {
            expect(g).toBeLessThanOrEqual(Math.max(0, caps[i]!));
            expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(1 + 1e-9 * caps[i]!);
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('an offset is what an item already holds: it takes only once λ·share passes it', () => {
    // λ = 2: the first takes 2·100 − 150 = 50, the second 2·100.
    expect([...waterFill([1000, 1000], [100, 100], 250, [150, 0])]).toEqual([50, 200]);
    // Below its offset an item takes nothing; with room for all, everyone is full.
    expect([...waterFill([1000, 1000], [100, 100], 100, [500, 0])]).toEqual([0, 100]);
    expect([...waterFill([10, 20], [1, 1], 30, [1e9, 0])]).toEqual([10, 20]);
  });
  it('with offsets: matches the definition, never exceeds the amount or a cap, monotone in the amount (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1e7 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1e7 })), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 2e8 }),
        fc.integer({ min: 0, max: 1e7 }),
        (items, amount, more) => {
          const caps = items.map(([c]) => c);
          const shares = items.map(([, w]) => 1000 * w);
          const offsets = items.map(([, , o]) => o);
          const got = [...waterFill(caps, shares, amount, offsets)];
          const want = reference(caps, shares, amount, offsets);
          expect(got.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(amount);
          got.forEach((g, i) => {
            expect(g).toBeLessThanOrEqual(Math.max(0, caps[i]!));
            expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(1 + 1e-9 * (caps[i]! + offsets[i]!));
          });
          const bigger = [...waterFill(caps, shares, amount + more, offsets)];
          bigger.forEach((b, i) => expect(b).toBeGreaterThanOrEqual(got[i]! - 1));
        },
      ),
      { numRuns: 500 },
    );
  });
});
