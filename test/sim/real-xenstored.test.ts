import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectXenstore } from '../../src/xenstore/client.js';
import { buildSimRig } from '../../dom0/sim/run.js';
import { scaledClock } from '../../dom0/sim/scaled-clock.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { scenario } from './helpers.js';

// The simulator on the REAL C xenstored (real time, sped up): guest reports, the balloon
// drivers' target watches and the manager all go through the daemon Qubes runs.
const skip = peerSkipReason();
if (skip) {
  if (process.env.CI === 'true') throw new Error(`real C xenstored unavailable in CI: ${skip}`);
  console.warn(`SKIP test/sim/real-xenstored.test.ts: real C xenstored unavailable (${skip})`);
}

describe.skipIf(skip !== null)('simulated host on the real C xenstored', () => {
  let daemon: PeerDaemon;
  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('guests publish, the manager balances, the balloons follow; no invariant breach', async () => {
    const s = scenario({
      totalMiB: 6144, durationS: 30,
      vms: [
        { name: 'a', memoryMiB: 2000, maxMiB: 4000, workload: 'idle' },
        { name: 'b', memoryMiB: 2000, maxMiB: 4000, workload: 'idle' },
        { name: 'late', memoryMiB: 800, maxMiB: 4000, workload: 'idle', startS: 10 },
      ],
    });
    // Real time runs 5x faster: daemon round trips cost real milliseconds, so keep it modest.
    const clock = scaledClock(5);
    const rig = await buildSimRig({ scenario: s, policy: 'xmem', clock, connect: () => connectXenstore({ path: daemon.socketPath }) });
    await rig.start();
    await clock.sleep(s.durationS * 1000);
    const state = rig.manager.state();
    const results = rig.sim.results();
    await rig.stop();

    expect(results.starts.map((x) => `${x.name}: ${x.refused ? x.why : 'started'}`)).toEqual(['late: started']);
    const vms = new Map(state.vms.map((v) => [v.name, v]));
    for (const name of ['a', 'b', 'late']) {
      expect(vms.get(name)?.signal, name).toBe('xmem'); // its reports crossed the daemon and parsed
      expect(vms.get(name)?.targetKib, name).not.toBeNull();
    }
    expect(results.violations).toEqual([]);
  }, 30_000);
});
