import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { memoryChanged } from '../../domU-agent/src/schedule.js';
import { COLUMNS, encodeWatch, evalForm, inForms, quietForms, type Raw } from '../../domU-agent/src/watch.js';
import { viewOf as view } from './raw.js';

/** A plausible guest: 256 MiB – 64 GiB, any fill level, with or without swap and a balloon. */
const guest = fc
  .record({
    total: fc.integer({ min: 262_144, max: 64 << 20 }),
    freeFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    bufFrac: fc.double({ min: 0, max: 0.1, noNaN: true }),
    cacheFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    swap: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 8 << 20 })),
    swapFreeFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    balloon: fc.boolean(),
    commitFrac: fc.double({ min: 0, max: 3, noNaN: true }),
  })
  .map((g) => {
    const free = Math.floor(g.total * g.freeFrac);
    const buf = Math.floor((g.total - free) * g.bufFrac);
    const cache = Math.floor((g.total - free - buf) * g.cacheFrac);
    const swfree = Math.floor(g.swap * g.swapFreeFrac);
    const bcur = g.balloon ? g.total + 1024 : 0;
    return [g.total, free, buf, cache, g.swap, swfree, free + cache, Math.floor(g.total * g.commitFrac), bcur];
  });

/** `raw` moved by up to ±k·T per column (the balloon column stays present or absent). */
const near = (raw: Raw, T: number, k: number) =>
  fc.array(fc.integer({ min: -Math.ceil(k * T), max: Math.ceil(k * T) }), { minLength: COLUMNS.length, maxLength: COLUMNS.length }).map((d) =>
    raw.map((v, i) => (i === 8 && v === 0 ? 0 : Math.max(i === 8 ? 1 : 0, v + d[i]!))),
  );

const threshold = fc.oneof(fc.constant(30_000), fc.integer({ min: 0, max: 200_000 }));

describe('meminfo watch ranges (watch.ts)', () => {
  it('while every form holds, no memory report is due (memoryChanged is false), for any point', () => {
    let inside = 0;
    let checked = 0;
    let withForms = 0;
    // A published sample, a current one near it (on the scale of T), and points near that.
    // G: the grow threshold (demand rising), from 0 to above T (where T rules).
    // The current sample sits near the published one on the scale of the smaller threshold.
    const scenario = fc.tuple(threshold, guest, fc.double({ min: 0, max: 1.5, noNaN: true })).chain(([T, pubRaw, g]) =>
      near(pubRaw, Math.min(T, Math.floor(g * T)), 0.3).chain((curRaw) =>
        fc.double({ min: 0, max: 1.2, noNaN: true }).chain((k) =>
          fc.tuple(fc.constant(T), fc.constant(Math.floor(g * T)), fc.constant(pubRaw), fc.constant(curRaw), fc.array(near(curRaw, T, k), { minLength: 20, maxLength: 20 })),
        ),
      ),
    );
    fc.assert(
      fc.property(scenario, ([T, G, pubRaw, curRaw, xs]) => {
        const pub = view(pubRaw);
        const forms = quietForms(pub, view(curRaw), T, G);
        if (!forms) return;
        withForms++;
        expect(inForms(forms, curRaw)).toBe(true);
        for (const x of xs) {
          checked++;
          if (!inForms(forms, x)) continue;
          inside++;
          expect(memoryChanged(pub, view(x), T, G)).toBe(false);
        }
      }),
      { numRuns: 600 },
    );
    // Not vacuous: most scenarios had forms, and a good share of the points fell inside them.
    expect(withForms).toBeGreaterThan(300);
    expect(inside).toBeGreaterThan(checked / 10);
  });

  it('is exact enough at the edge of "busy" (⌊used/10⌋ > ⌊(total+12)/13⌋), where the sliver between the rules is', () => {
    // Published not busy, then used grows by more than T/2 to land a few KiB around the edge.
    const edge = fc.record({
      total: fc.integer({ min: 262_144, max: 64 << 20 }),
      T: fc.integer({ min: 2, max: 200_000 }),
      d: fc.double({ min: 0.5, max: 1, noNaN: true }),
      j: fc.integer({ min: -40, max: 40 }),
      balloon: fc.boolean(),
    });
    let reports = 0;
    fc.assert(
      fc.property(edge, ({ total, T, d, j, balloon }) => {
        const firstBusy = 10 * (Math.floor((total + 12) / 13) + 1);
        const grow = Math.floor(d * T) + 1; // > T/2
        const pubUsed = firstBusy - grow;
        if (pubUsed <= 0) return;
        const raw = (used: number) => [balloon ? total + 4096 : total, total - used, 0, 0, 0, 0, 1 << 20, 1 << 20, balloon ? total : 0];
        const pub = view(raw(pubUsed));
        const forms = quietForms(pub, pub, T);
        if (!forms) return;
        const x = raw(firstBusy + j);
        const changed = memoryChanged(pub, view(x), T);
        if (changed) reports++;
        if (inForms(forms, x)) expect(changed).toBe(false);
      }),
      { numRuns: 2000 },
    );
    expect(reports).toBeGreaterThan(200);
  });

  it('holds the published point itself unless it sits on the busy boundary, and is null once a report is due', () => {
    fc.assert(
      fc.property(threshold.filter((t) => t >= 1000), guest, (T, raw) => {
        const pub = view(raw);
        if (pub.usedKib <= 0) return;
        expect(quietForms(pub, pub, T)).not.toBeNull();
        const grown = { ...pub, availKib: pub.availKib + T + 1 };
        expect(memoryChanged(pub, grown, T)).toBe(true);
        expect(quietForms(pub, grown, T)).toBeNull();
      }),
    );
  });

  it('demand rising (MemAvailable down, Committed_AS up) reports at the grow threshold; falling at the full one', () => {
    const pub = view([4 << 20, 3 << 20, 0, 0, 0, 0, 3 << 20, 1 << 20, 0]);
    const T = 30_000;
    const G = 8192;
    for (const [d, want] of [[-(G + 1), true], [-G, false], [G + 1, false], [T, false], [T + 1, true]] as const) {
      const x = view([4 << 20, 3 << 20, 0, 0, 0, 0, (3 << 20) + d, 1 << 20, 0]);
      expect(memoryChanged(pub, x, T, G), `MemAvailable ${d}`).toBe(want);
      expect(inForms(quietForms(pub, pub, T, G)!, [4 << 20, 3 << 20, 0, 0, 0, 0, (3 << 20) + d, 1 << 20, 0])).toBe(!want);
    }
    for (const [d, want] of [[G + 1, true], [G, false], [-(G + 1), false], [-(T + 1), true]] as const) {
      const x = view([4 << 20, 3 << 20, 0, 0, 0, 0, 3 << 20, (1 << 20) + d, 0]);
      expect(memoryChanged(pub, x, T, G), `Committed_AS ${d}`).toBe(want);
    }
  });

  it('lets an idle guest drift up to the threshold, and a busy one half of it', () => {
    // 4 GiB, 1 GiB used: not busy. Growth of 29 000 KiB of used keeps the forms; 31 000 not.
    const idle = [4 << 20, 3 << 20, 0, 0, 0, 0, 3 << 20, 1 << 20, 0];
    const pub = view(idle);
    const forms = quietForms(pub, pub, 30_000)!;
    const grow = (raw: number[], kib: number) => raw.map((v, i) => (i === 1 ? v - kib : v));
    expect(inForms(forms, grow(idle, 29_000))).toBe(true);
    expect(inForms(forms, grow(idle, 30_001))).toBe(false);
    // 1 GiB, ~85 % used: busy; 15 000 KiB holds, 15 001 does not.
    const busy = [1 << 20, 157_286, 0, 0, 0, 0, 157_286, 900_000, 0];
    const bpub = view(busy);
    const bforms = quietForms(bpub, bpub, 30_000)!;
    expect(inForms(bforms, grow(busy, 15_000))).toBe(true);
    expect(inForms(bforms, grow(busy, 15_001))).toBe(false);
    expect(memoryChanged(bpub, view(grow(busy, 15_001)), 30_000)).toBe(true);
  });

  it('follows the balloon column when the total is the balloon size', () => {
    const raw = [4 << 20, 1 << 20, 0, 0, 0, 0, 1 << 20, 1 << 20, 2 << 20]; // 2 GiB balloon, 1 GiB used
    const pub = view(raw);
    expect(pub.totalIsBalloon).toBe(true);
    const forms = quietForms(pub, pub, 30_000)!;
    const total = forms.find((f) => f.c.filter((c) => c !== 0).length === 1 && f.c[8] === 1)!;
    expect([total.lo, total.hi]).toEqual([(2 << 20) - 30_000, (2 << 20) + 30_000]);
    expect(forms.every((f) => f.c[0] === 0)).toBe(true); // MemTotal is not looked at
    expect(evalForm(total, raw)).toBe(2 << 20);
  });

  it('encodes the helper command: "w" and per form lo hi c0..c8', () => {
    expect(encodeWatch(null)).toBe('w\n');
    const line = encodeWatch([{ lo: -5, hi: 7, c: [1, 0, 0, 0, 0, 0, 0, 0, -1] }]);
    expect(line).toBe('w -5 7 1 0 0 0 0 0 0 0 -1\n');
  });
});
