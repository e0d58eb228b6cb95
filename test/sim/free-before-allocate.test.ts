import { describe, expect, it } from 'vitest';
import type { VmDecision } from '../../src/policy/types.js';
import { applyPlan } from '../../dom0/manager/applier.js';
import { keys } from '../../dom0/manager/keys.js';
import { planApply } from '../../dom0/manager/plan.js';
import { MiB, domainNamed, scenario, start } from './helpers.js';

/**
 * squeezed's scenario f: without free-before-allocate (its "two-phase target setting"), a VM
 * told to grow tries to allocate memory a donor has not given back yet. The Manager has no
 * switch to disable the ordering, so this drives the applier directly with the same decisions:
 * the real applier (shrinks, wait, grows) keeps every allocation within free memory; writing
 * the same targets grow-first makes the simulated host record allocations beyond free memory.
 */
const s = () => scenario({
  totalMiB: 4096, durationS: 30,
  vms: [
    { name: 'donor', memoryMiB: 2000, maxMiB: 4000, workload: 'idle', balloon: { kind: 'ideal', downMiBps: 120 } },
    { name: 'taker', memoryMiB: 1000, maxMiB: 4000, workload: 'idle' },
  ],
});

function decisions(donorId: number, takerId: number): VmDecision[] {
  const d = (domid: number, name: string, targetKib: number, change: VmDecision['change']): VmDecision => ({
    domid, name, idealKib: targetKib, floorKib: 400 * MiB, targetKib, maxmemKib: targetKib + MiB, change, reason: 'test', managed: true,
  });
  return [d(takerId, 'taker', 1900 * MiB, 'grow'), d(donorId, 'donor', 1100 * MiB, 'shrink')];
}

async function rigWithoutBalancing() {
  // The static policy keeps its hands off, so only this test's writes move anything.
  const run = await start(s(), 'static');
  await run.until(5);
  const donor = domainNamed(run, 'donor')!;
  const taker = domainNamed(run, 'taker')!;
  return { run, donor, taker };
}

describe('free before allocate (squeezed scenario f), driving the applier directly', () => {
  it('the real applier: shrinks first, grows once the memory is free; no allocation beyond free memory', async () => {
    const { run, donor, taker } = await rigWithoutBalancing();
    const facts = await run.rig.sim.host.facts();
    const byId = new Map(facts.domains.map((d) => [d.domid, d]));
    const plan = planApply({
      decisions: decisions(donor.domid, taker.domid), facts: byId,
      targets: new Map([[donor.domid, donor.targetKib], [taker.domid, taker.targetKib]]), stuck: new Set(), lowerMaxmem: true,
    });
    const applying = applyPlan(plan, facts, {
      xs: run.rig.sim.host.xs, host: run.rig.sim.host, clock: run.clock, promisedKib: () => 0, onApplied: () => {},
    }, { reserveKib: 64 * MiB, waitMaxMs: 20_000, waitPollMs: 100 });
    await run.until(25);
    await applying;
    expect(run.rig.sim.host.violationCounts['alloc-beyond-free']).toBe(0);
    expect(taker.actualKib).toBeGreaterThan(1800 * MiB);
    await run.finish();
  });

  it('grow-first (two-phase disabled): the taker tries to allocate memory that is not free', async () => {
    const { run, donor, taker } = await rigWithoutBalancing();
    const xs = run.rig.sim.host.xs;
    await run.rig.sim.host.setMaxmem(taker.domid, 1901 * MiB);
    await xs.write(keys(taker.domid).target, String(1900 * MiB));
    await xs.write(keys(donor.domid).target, String(1100 * MiB));
    await run.until(20);
    expect(run.rig.sim.host.violationCounts['alloc-beyond-free']).toBeGreaterThan(0);
    await run.finish();
  });
});
