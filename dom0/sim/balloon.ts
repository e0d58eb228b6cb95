import { MIB } from '../../src/units.js';
import type { BalloonSpec } from './scenario.js';

/**
 * Fake balloon drivers (after squeezed's simulator): how far a domain's allocation moves
 * toward its target in one step. Pure. Free memory and maxmem are applied by the host
 * afterwards — a driver only says what it *tries*.
 */
export interface BalloonState {
  actualKib: number;
  targetKib: number | null;
  /** The smallest allocation the guest survives at (below it the kernel has nothing left). */
  hardFloorKib: number;
}

/** Signed KiB the driver tries to move this step (negative: gives memory back). */
export function balloonAttempt(spec: BalloonSpec, s: BalloonState, nowMs: number, dtS: number): number {
  if (s.targetKib === null) return 0;
  if (spec.kind === 'stuck') return 0;
  if (spec.kind === 'intermittent') {
    const interval = (spec.intervalS ?? 5) * 1000;
    if (Math.floor(nowMs / interval) % 2 === 0) return 0;
  }
  let goal = Math.max(s.targetKib, s.hardFloorKib);
  const limit = spec.limitMiB === undefined ? undefined : spec.limitMiB * MIB;
  if (spec.kind === 'lower-limit' && limit !== undefined) goal = Math.max(goal, limit);
  if (spec.kind === 'upper-limit' && limit !== undefined) goal = Math.min(goal, Math.max(limit, s.actualKib));
  const want = goal - s.actualKib;
  if (want > 0) return Math.min(want, spec.upMiBps * MIB * dtS);
  if (want < 0) return -Math.min(-want, spec.downMiBps * MIB * dtS);
  return 0;
}
