import type { PolicyConfig } from './config.js';
import type { Estimate } from './estimate.js';
import type { PressureReading } from './pressure.js';
import type { VmHistory, VmSnapshot } from './types.js';
import { clamp, fmt } from './common.js';

/**
 * A VM's demand this pass ("want", between floor and ceiling): what it asks for before memory
 * is shared out. Pure; the moderation state lives in VmHistory and is returned updated.
 *
 * - Growth is immediate: an ideal above the last demand is wanted at once.
 * - Pressure (senpai backoff): want = max(ideal, what it has) + max(growMin, base ×
 *   min(growMaxFraction, (err / coeffBackoff)²)), up to the ceiling.
 * - Shrink is moderated: not within holdMs of pressure, not while PSI has not decayed (until
 *   decayMaxMs), not within riseHoldMs of a rise of the ideal (a growing working set), at most
 *   one step (max(stepMin, stepFraction × demand)) per intervalMs.
 * - Probing (senpai): while PSI stays calm, calmForMs after the last pressure, the goal drops
 *   below the ideal by `fraction` of the demand per intervalMs, down to the floor; pressure
 *   gives it all back.
 */
export interface Demand {
  wantKib: number;
  history: VmHistory;
  /** What moderation did, for the reason ('' when nothing notable). */
  note: string;
  pressured: boolean;
  /** Under pressure now or within holdMs of it: favoured when memory is scarce. */
  recentPressure: boolean;
  /** Being walked down (a moderated shrink, stepping or rate-limited, or a probe under way): the
   *  memory above its goal is on its way back, so a scarce pool does not raise its target. */
  shrinking: boolean;
}

export function demand(vm: VmSnapshot, est: Estimate, pr: PressureReading, cfg: PolicyConfig, nowMs: number): Demand {
  const h = vm.history;
  const { floorKib: floor, idealKib: ideal, ceilingKib: ceiling } = est;
  let lastPressure = h.lastPressureMs;
  let lastShrink = h.lastShrinkMs;
  let probe = Math.max(0, h.probeKib ?? 0);
  let lastProbe = h.lastProbeMs ?? null;
  const prev = clamp(h.wantKib ?? vm.actualKib, floor, ceiling);
  let want: number;
  let note = '';
  let shrinking = false;
  // A rise is measured from a reference that follows every fall, so a slow climb (a few MiB
  // per report) registers once it adds up to riseMin.
  let refIdeal = h.lastIdealKib ?? ideal;
  let lastRise = h.lastRiseMs ?? null;
  if (ideal >= refIdeal + cfg.shrink.riseMin) {
    lastRise = nowMs;
    refIdeal = ideal;
  } else if (ideal < refIdeal) {
    refIdeal = ideal;
  }

  if (pr.pressured) {
    const base = Math.max(vm.actualKib, prev);
    const frac = Math.min(cfg.pressure.growMaxFraction, (pr.err / cfg.pressure.coeffBackoff) ** 2);
    const grow = Math.max(cfg.pressure.growMin, Math.round(base * frac));
    want = Math.max(ideal, base) + grow;
    probe = 0;
    lastProbe = null;
    lastPressure = nowMs;
    note = `pressure (PSI some avg10 ${pr.avg10.toFixed(2)}%, stall +${Math.round(pr.stallDeltaUs / 1000)} ms): +${fmt(grow)} over ${fmt(Math.max(ideal, base))}`;
  } else {
    const sincePressure = lastPressure === null ? Infinity : nowMs - lastPressure;
    if (cfg.probe.enabled && pr.hasPsi && pr.calm && sincePressure >= cfg.probe.calmForMs) {
      if (lastProbe === null) lastProbe = nowMs;
      else if (nowMs - lastProbe >= cfg.probe.intervalMs) {
        probe = Math.min(Math.max(0, ideal - floor), probe + Math.max(1, Math.round(cfg.probe.fraction * prev)));
        lastProbe = nowMs;
      }
    } else if (!pr.calm) {
      lastProbe = null; // the calm period has to start again
    }
    probe = Math.min(probe, Math.max(0, ideal - floor));
    const goal = clamp(ideal - probe, floor, ceiling);
    if (probe > 0) note = `probing ${fmt(probe)} below ideal while PSI is calm`;
    if (goal >= prev) {
      want = goal;
    } else if (sincePressure < cfg.pressure.holdMs) {
      want = prev;
      note = `holding ${fmt(prev)} for ${Math.ceil((cfg.pressure.holdMs - sincePressure) / 1000)} s after pressure`;
    } else if (!pr.calm && sincePressure < cfg.pressure.decayMaxMs) {
      want = prev;
      note = `holding ${fmt(prev)} until PSI decays (avg10 ${pr.avg10.toFixed(2)}%, avg60 ${pr.avg60.toFixed(2)}%)`;
    } else if (lastRise !== null && nowMs - lastRise < cfg.shrink.riseHoldMs) {
      want = prev;
      note = `holding ${fmt(prev)}: its ideal rose ${Math.round((nowMs - lastRise) / 1000)} s ago (working set growing)`;
    } else if (lastShrink !== null && nowMs - lastShrink < cfg.shrink.intervalMs) {
      want = prev;
      note = `shrink toward ${fmt(goal)} rate-limited`;
      shrinking = true;
    } else {
      const step = Math.max(cfg.shrink.stepMin, Math.round(cfg.shrink.stepFraction * prev));
      want = Math.max(goal, prev - step);
      lastShrink = nowMs;
      if (want > goal) note = `shrinking toward ${fmt(goal)} by at most ${fmt(step)} per step`;
      shrinking = want > goal;
    }
  }
  want = clamp(want, floor, ceiling);
  return {
    wantKib: want,
    pressured: pr.pressured,
    recentPressure: lastPressure !== null && nowMs - lastPressure < cfg.pressure.holdMs,
    // A probe under way walks the VM down too, one step per probe interval (pressure zeroes it).
    shrinking: (shrinking || probe > 0) && want > floor,
    note,
    history: {
      lastTargetKib: h.lastTargetKib,
      lastPressureMs: lastPressure,
      lastShrinkMs: lastShrink,
      lastStallTotalUs: pr.stallTotalUs ?? h.lastStallTotalUs,
      wantKib: want,
      probeKib: probe,
      lastProbeMs: lastProbe,
      lastIdealKib: refIdeal,
      lastRiseMs: lastRise,
    },
  };
}
