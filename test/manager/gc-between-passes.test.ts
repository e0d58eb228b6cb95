import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { PassAllocation, gcBetweenPasses, type GcFunction, type YoungGeneration } from '../../dom0/manager/gc-between-passes.js';

const KiB = 1024;
const gen = (usedKib: number, availableKib: number): YoungGeneration => ({ usedBytes: usedKib * KiB, availableBytes: availableKib * KiB });

describe('PassAllocation', () => {
  it('asks for nothing until it has seen a pass allocate', () => {
    const a = new PassAllocation();
    expect(a.afterPass(gen(100, 10))).toBe(false);
    expect(a.largestPassBytes()).toBe(0);
  });

  it('takes the largest of the recent passes as the size of one', () => {
    const a = new PassAllocation();
    a.afterPass(gen(0, 4000));
    expect(a.afterPass(gen(300, 3700))).toBe(false);
    expect(a.afterPass(gen(650, 3350))).toBe(false);
    expect(a.afterPass(gen(900, 3100))).toBe(false);
    expect(a.largestPassBytes()).toBe(350 * KiB);
  });

  it('collects before two more passes could take the young generation past 75 % (V8 scavenges at 80 %)', () => {
    const a = new PassAllocation();
    a.afterPass(gen(0, 4000));
    // Passes of 400 KiB, capacity 4000 KiB: 75 % is 3000.
    for (const used of [400, 800, 1200, 1600, 2000]) expect(a.afterPass(gen(used, 4000 - used))).toBe(false);
    expect(a.afterPass(gen(2400, 1600))).toBe(true); // 2400 + 2 × 400 = 3200 > 3000
    const b = new PassAllocation();
    b.afterPass(gen(1800, 2200));
    expect(b.afterPass(gen(2200, 1800))).toBe(false); // 2200 + 2 × 400 = 3000: not past it
  });

  it('does not count a growth that a collection interrupted, and measures again from the collection', () => {
    const a = new PassAllocation();
    a.afterPass(gen(1000, 3000));
    a.afterPass(gen(200, 3800)); // V8 collected during this pass: no growth known
    expect(a.largestPassBytes()).toBe(0);
    a.collected(gen(20, 3980));
    a.afterPass(gen(320, 3680));
    expect(a.largestPassBytes()).toBe(300 * KiB);
  });

  it('forgets a large pass after 16 more', () => {
    const a = new PassAllocation();
    a.afterPass(gen(0, 100_000));
    a.afterPass(gen(5000, 95_000));
    let used = 5000;
    for (let i = 0; i < 15; i++) a.afterPass(gen((used += 100), 90_000));
    expect(a.largestPassBytes()).toBe(5000 * KiB);
    a.afterPass(gen((used += 100), 90_000));
    expect(a.largestPassBytes()).toBe(100 * KiB);
  });
});

describe('gcBetweenPasses', () => {
  it('scavenges in the pass event that leaves too little room, and stops listening on stop()', () => {
    const source = new EventEmitter();
    // Capacity 2000 KiB, passes of 400: the 3rd ends at 1200, and 1200 + 2 × 400 > 75 % of 2000.
    const readings = [gen(0, 2000), gen(400, 1600), gen(700, 1300), gen(1200, 800), gen(10, 1990), gen(410, 1590)];
    let next = 0;
    const calls: unknown[] = [];
    const gc: GcFunction = (opts) => calls.push(opts);
    const c = gcBetweenPasses(source, { gc, young: () => readings[next++]! });
    for (let i = 0; i < 3; i++) source.emit('pass');
    expect(calls).toEqual([]);
    source.emit('pass'); // synchronously, before the manager can start another pass
    expect(calls).toEqual([{ type: 'minor' }]);
    expect(c.collections()).toBe(1);
    source.emit('pass'); // 410 − 10: 400 KiB again, room for plenty
    expect(calls).toHaveLength(1);
    c.stop();
    expect(source.listenerCount('pass')).toBe(0);
  });

  // Real V8: the collections move out of the passes.
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'gc-passes.ts');
  const run = async (mode: 'on' | 'off') => {
    // A young generation of 16 MiB from the start, as the manager's grows to (V8's maximum):
    // V8's own scavenge task (at 80 %) comes long before the space is full.
    const { stdout } = await execa(process.execPath, ['--expose-gc', '--min-semi-space-size=16', '--import', 'tsx', script, mode]);
    return JSON.parse(stdout) as { inside: number; total: number; collections: number };
  };

  it('under node --expose-gc, no young-generation collection falls inside a pass', async () => {
    const [off, on] = await Promise.all([run('off'), run('on')]);
    expect(off.inside).toBeGreaterThan(5); // without it V8 scavenges mid-pass
    expect(on.collections).toBeGreaterThan(5);
    expect(on.inside).toBe(0);
  }, 60_000);
});
