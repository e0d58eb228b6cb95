import { describe, expect, it } from 'vitest';
import { MiB, domainNamed, scenario, start, vmFlags } from './helpers.js';

/**
 * A VM that becomes stuck is clamped as squeezed clamps an inactive domain: maxmem =
 * min(target, actual) + 1 MiB, so it cannot resume growing into memory handed to others
 * meanwhile (a grower first has its target brought down to what it has). It is balanced again
 * once it moves (or, for a grower, when the sweep retries it).
 */
const hungry = { points: [{ atS: 0, anonMiB: 150, cacheMiB: 50 }, { atS: 10, anonMiB: 150, cacheMiB: 50 }, { atS: 30, anonMiB: 1700, cacheMiB: 200 }], commitExtraMiB: 100, coldCacheMiB: 0 };

describe('stuck VMs are clamped', () => {
  it('a grower stuck at a hidden ceiling is held at what it has (target and maxmem), and others get the memory', async () => {
    const s = scenario({
      totalMiB: 6144, durationS: 120,
      workloads: { hungry },
      vms: [
        { name: 'capped', memoryMiB: 1000, maxMiB: 4000, workload: 'hungry', balloon: { kind: 'upper-limit', limitMiB: 1300 } },
        { name: 'other', memoryMiB: 1000, maxMiB: 4000, workload: 'hungry' },
        { name: 'c', memoryMiB: 1500, maxMiB: 4000, workload: 'idle' },
      ],
    });
    const run = await start(s);
    let clampedSeen = false;
    let loose = 0;
    await run.until(120, () => {
      const d = domainNamed(run, 'capped')!;
      if (!vmFlags(run, 'capped').includes('stuck')) return;
      // Once stuck: no ceiling left above what it has, and no promise it cannot take.
      if (d.maxmemKib > d.actualKib + MiB + 1 || (d.targetKib ?? 0) > d.actualKib + 16 * MiB) loose++;
      else clampedSeen = true;
    });
    const other = run.rig.sim.live().find((v) => v.name === 'other')!;
    const r = await run.finish();
    expect(clampedSeen).toBe(true);
    expect(loose).toBe(0);
    expect(other.actualKib).toBeGreaterThanOrEqual(other.needKib);
    expect(r.violations).toEqual([]);
  });
});
