import { describe, expect, it } from 'vitest';
import { decide } from '../../src/policy/index.js';
import type { HostSnapshot } from '../../src/policy/types.js';
import type { XmemConfig } from '../../dom0/config.js';
import { loadScenario } from '../../dom0/sim/scenario.js';
import { buildSimRig } from '../../dom0/sim/run.js';
import { VirtualClock } from '../../dom0/sim/virtual-clock.js';

/**
 * Passes one at a time, and promises that outlive a pass. On the laptop scenario under the
 * qmemman policy (many grows deferred for free memory, passes back to back in the same
 * instant) two passes once granted dom0 and dev +243 MiB each with 306 MiB free: the second
 * pass did not count the first one's grow of a VM it deferred.
 */
describe('passes on the simulated laptop (qmemman policy)', () => {
  it('never overlap, and never grant more growth than is free (no allocation beyond free memory)', async () => {
    const scenario = await loadScenario('qubes-laptop');
    const clock = new VirtualClock();
    let inPass = 0;
    let overlaps = 0;
    let decided = 0;
    // decide() runs once per pass, between its facts and its writes: count passes in flight.
    const counting = (s: HostSnapshot, c: XmemConfig['policy']) => {
      decided++;
      if (inPass++ > 0) overlaps++;
      return decide(s, c);
    };
    const rig = await buildSimRig({ scenario, policy: 'qmemman', clock, decide: counting });
    rig.manager.on('pass', () => { inPass = Math.max(0, inPass - 1); });
    await rig.start();
    await clock.runUntil(scenario.durationS * 1000);
    const r = rig.sim.results();
    let stopped = false;
    const stopping = rig.stop().finally(() => { stopped = true; });
    for (let i = 0; i < 10_000 && !stopped; i++) await clock.advance(100);
    await stopping;
    expect(decided).toBeGreaterThan(100);
    expect(overlaps).toBe(0);
    expect(r.violations).toEqual([]);
    expect(r.starts.filter((s) => s.refused)).toEqual([]);
  }, 60_000);
});
