import type { PolicyConfig } from './config.js';
import type { VmSnapshot } from './types.js';

/**
 * The guest's memory pressure, from its PSI (xmem reports only). Pressure is a fresh stall
 * (the `some` total grew by ≥ stallUs since the last report seen) or avg10 ≥ growAvg10Pct;
 * `err` is senpai's error ratio (how many times over the threshold). Calm is oomd's rule:
 * max(avg10, avg60) below calmPct and no fresh stall. A high avg10 without a fresh stall
 * counts as pressure at most once per growIntervalMs. Averages lag a fast collapse
 * (xen-lab §6.3), which is why the floor, not PSI, is what protects a guest.
 */
export interface PressureReading {
  hasPsi: boolean;
  pressured: boolean;
  calm: boolean;
  err: number;
  stallDeltaUs: number;
  avg10: number;
  avg60: number;
  /** The stall total to remember for next time (null: none seen). */
  stallTotalUs: number | null;
}

const NO_PSI: PressureReading = {
  hasPsi: false, pressured: false, calm: true, err: 0, stallDeltaUs: 0, avg10: 0, avg60: 0, stallTotalUs: null,
};

export function readPressure(vm: VmSnapshot, cfg: PolicyConfig, nowMs: number): PressureReading {
  const s = vm.signal;
  if (s.kind !== 'xmem' || s.report.psi === null) return NO_PSI;
  const psi = s.report.psi;
  const last = vm.history.lastStallTotalUs;
  // A total below the last one means the agent (or guest) restarted: no delta this time.
  const delta = last !== null && psi.stot >= last ? psi.stot - last : 0;
  const p = cfg.pressure;
  const err = Math.max(delta / p.stallUs, p.growAvg10Pct > 0 ? psi.s10 / p.growAvg10Pct : 0);
  const lastGrow = vm.history.lastPressureMs;
  const avgHigh = p.growAvg10Pct > 0 && psi.s10 >= p.growAvg10Pct;
  const pressured = delta >= p.stallUs || (avgHigh && (lastGrow === null || nowMs - lastGrow >= p.growIntervalMs));
  const calm = Math.max(psi.s10, psi.s60) < p.calmPct && delta < p.stallUs;
  return { hasPsi: true, pressured, calm, err, stallDeltaUs: delta, avg10: psi.s10, avg60: psi.s60, stallTotalUs: psi.stot };
}
