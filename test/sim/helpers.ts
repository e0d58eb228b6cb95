import { buildSimRig, type SimRig, type SimRigOptions } from '../../dom0/sim/run.js';
import { parseScenario, type Scenario } from '../../dom0/sim/scenario.js';
import { VirtualClock } from '../../dom0/sim/virtual-clock.js';

export const MiB = 1024;

/** A small scenario: dom0 (fixed 1 GiB) plus the given VMs on `totalMiB`, no Xen overhead. */
export function scenario(o: { totalMiB: number; durationS: number; vms: unknown[]; workloads?: Record<string, unknown>; config?: Record<string, unknown>; startTimeoutS?: number }): Scenario {
  return parseScenario({
    name: 'test',
    description: 'test scenario',
    seed: 1,
    durationS: o.durationS,
    host: { totalMiB: o.totalMiB, xenMiB: 0 },
    startTimeoutS: o.startTimeoutS ?? 60,
    workloads: {
      dom0: { points: [{ atS: 0, anonMiB: 300, cacheMiB: 100 }], commitExtraMiB: 100, coldCacheMiB: 0 },
      idle: { points: [{ atS: 0, anonMiB: 150, cacheMiB: 50 }], commitExtraMiB: 100, coldCacheMiB: 0 },
      ...o.workloads,
    },
    vms: [{ name: 'dom0', dom0: true, memoryMiB: 1024, maxMiB: 1024, workload: 'dom0' }, ...o.vms],
    config: o.config ?? {},
  }, 'test');
}

export interface TestRun {
  rig: SimRig;
  clock: VirtualClock;
  /** Runs to `atS` simulated seconds, calling `each` every simulated second. */
  until(atS: number, each?: () => void): Promise<void>;
  finish(): Promise<ReturnType<SimRig['sim']['results']>>;
}

export async function start(s: Scenario, policy = 'xmem', extra: Partial<SimRigOptions> = {}): Promise<TestRun> {
  const clock = new VirtualClock();
  const rig = await buildSimRig({ ...extra, scenario: s, policy, clock });
  await rig.start();
  return {
    rig, clock,
    async until(atS, each) {
      while (clock.now() < atS * 1000) {
        await clock.runUntil(Math.min(atS * 1000, clock.now() + 1000));
        each?.();
      }
    },
    async finish() {
      await this.until(s.durationS);
      const r = rig.sim.results();
      let stopped = false;
      const stopping = rig.stop().finally(() => { stopped = true; });
      for (let i = 0; i < 1000 && !stopped; i++) await clock.advance(100);
      await stopping;
      return r;
    },
  };
}

export function domainNamed(run: TestRun, name: string) {
  return [...run.rig.sim.host.domains.values()].find((d) => d.name === name);
}

export function vmFlags(run: TestRun, name: string): string[] {
  return run.rig.manager.state().vms.find((v) => v.name === name)?.flags ?? [];
}
