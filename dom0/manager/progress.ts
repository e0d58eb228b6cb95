/**
 * Stuck detection, squeezed-style (anchors §2.2): a VM with an outstanding target that makes
 * no progress toward it for `stuckAfterMs` is stuck; it is excluded from balancing and shown,
 * and it is cleared as soon as it moves toward its target again or reaches it. Pure.
 */

export interface ProgressTrack {
  targetKib: number;
  lastActualKib: number;
  /** Last time the VM was on target or moved toward it. */
  lastProgressMs: number;
  stuck: boolean;
}

export interface ProgressOptions {
  stuckAfterMs: number;
  /** Within this distance of its target a VM counts as arrived (xl reports whole MiB). */
  toleranceKib: number;
}

export type ProgressEvent = 'stuck' | 'unstuck' | null;

export function trackProgress(
  prev: ProgressTrack | undefined,
  actualKib: number,
  targetKib: number | null,
  nowMs: number,
  opts: ProgressOptions,
): { track: ProgressTrack | undefined; event: ProgressEvent } {
  if (targetKib === null) {
    return { track: undefined, event: prev?.stuck ? 'unstuck' : null };
  }
  const wasStuck = prev?.stuck ?? false;
  const arrived = Math.abs(actualKib - targetKib) <= opts.toleranceKib;
  if (arrived) {
    return { track: { targetKib, lastActualKib: actualKib, lastProgressMs: nowMs, stuck: false }, event: wasStuck ? 'unstuck' : null };
  }
  if (!prev) {
    return { track: { targetKib, lastActualKib: actualKib, lastProgressMs: nowMs, stuck: false }, event: null };
  }
  // Progress = the distance to the target shrank by at least the tolerance's granularity.
  const before = Math.abs(prev.lastActualKib - targetKib);
  const after = Math.abs(actualKib - targetKib);
  const moved = before - after >= Math.min(opts.toleranceKib, 1024);
  if (moved) {
    return { track: { targetKib, lastActualKib: actualKib, lastProgressMs: nowMs, stuck: false }, event: wasStuck ? 'unstuck' : null };
  }
  // A new target restarts the clock (the guest gets its full grace period), but does not by
  // itself clear a stuck flag: only movement does. Not a target further the same way, though:
  // a moderated shrink lowers the target every few seconds, and a balloon that moved toward
  // none of them must not be given a fresh grace period with each step.
  const sameWay = Math.sign(targetKib - actualKib) === Math.sign(prev.targetKib - actualKib);
  const further = sameWay && Math.abs(targetKib - actualKib) > Math.abs(prev.targetKib - actualKib);
  const lastProgressMs = prev.targetKib !== targetKib && !further ? nowMs : prev.lastProgressMs;
  const stuck = wasStuck || nowMs - lastProgressMs >= opts.stuckAfterMs;
  return {
    track: { targetKib, lastActualKib: moved ? actualKib : prev.lastActualKib, lastProgressMs, stuck },
    event: stuck && !wasStuck ? 'stuck' : null,
  };
}
