import type { Violation, ViolationKind } from './host.js';

/** What one simulated VM went through (the policy benchmark's columns). */
export interface VmMetrics {
  name: string;
  /** Seconds during which some / all of its tasks stalled on memory (PSI totals). */
  stallSomeS: number;
  stallFullS: number;
  oomKills: number;
  swapOutMiB: number;
  /** MiB·s of allocation above what the guest needed (working set + kernel + gap). */
  idleMiBs: number;
  /** MiB·s of allocation below what it needed. */
  shortMiBs: number;
  /** Seconds it ran (not paused): stall-seconds are comparable per VM-second only. */
  liveS: number;
}

export const emptyVmMetrics = (name: string): VmMetrics => ({
  name, stallSomeS: 0, stallFullS: 0, oomKills: 0, swapOutMiB: 0, idleMiBs: 0, shortMiBs: 0, liveS: 0,
});

export interface StartRecord {
  name: string;
  atS: number;
  /** Seconds from the request to admission (or to refusal). */
  latencyS: number;
  refused: boolean;
  why: string;
}

export interface SimResults {
  scenario: string;
  simulatedS: number;
  ticks: number;
  vms: VmMetrics[];
  starts: StartRecord[];
  violations: Violation[];
  violationCounts: Record<ViolationKind, number>;
}

export interface Totals {
  stallSomeS: number;
  stallFullS: number;
  oomKills: number;
  swapOutMiB: number;
  idleMiBs: number;
  starts: number;
  refused: number;
  /** Mean and worst latency of admitted starts, seconds. */
  startMeanS: number;
  startMaxS: number;
  violations: number;
  /** VM-seconds run, and stall-some as a share of them (percent). */
  vmSeconds: number;
  stallPct: number;
}

export function totals(r: SimResults): Totals {
  const sum = (f: (v: typeof r.vms[number]) => number) => r.vms.reduce((s, v) => s + f(v), 0);
  const admitted = r.starts.filter((s) => !s.refused && Number.isFinite(s.latencyS));
  return {
    stallSomeS: sum((v) => v.stallSomeS),
    stallFullS: sum((v) => v.stallFullS),
    oomKills: sum((v) => v.oomKills),
    swapOutMiB: sum((v) => v.swapOutMiB),
    idleMiBs: sum((v) => v.idleMiBs),
    starts: r.starts.length,
    refused: r.starts.filter((s) => s.refused).length,
    startMeanS: admitted.length ? admitted.reduce((s, x) => s + x.latencyS, 0) / admitted.length : 0,
    startMaxS: admitted.reduce((m, x) => Math.max(m, x.latencyS), 0),
    violations: Object.values(r.violationCounts).reduce((a, b) => a + b, 0),
    vmSeconds: sum((v) => v.liveS),
    stallPct: sum((v) => v.liveS) > 0 ? (100 * sum((v) => v.stallSomeS)) / sum((v) => v.liveS) : 0,
  };
}
