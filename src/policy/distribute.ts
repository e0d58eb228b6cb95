import { waterFill } from './water-fill.js';

/**
 * Shares the pool among managed VMs, given each one's bounds. Pure, O(n log n).
 *
 * - enough   (pool ≥ Σ want):  everyone gets its want; the surplus beyond `keepFreeKib` goes where `surplus` says:
 *            `proportional` in proportion to weight × ideal (qmemman's rule, ∝ pref), up to each
 *            ceiling; `dom0` to dom0 up to its ceiling; `free` nowhere. A VM still above its
 *            ideal (a pressure boost, a moderated shrink under way) holds part of its share
 *            already: it gets max(want, ideal + share). Topping its want up instead would hand
 *            back, as surplus, each step its moderated shrink gives up, and its target would go
 *            back and forth while the shrinks of the others settle. A VM probed below its
 *            ideal gets the probe back first: the memory would only be handed out again as
 *            surplus, and the probe and the others' shrinks would move it down and up in turn.
 *            So with memory to spare a probe bites only when the surplus is kept (`free`,
 *            `dom0`) or short (less than the probes: then each gets the same fraction back).
 * - scarcity (Σ floor ≤ pool < Σ want): everyone gets its floor plus the same weighted
 *            fraction of (want − floor): squeezed's equal fraction, with weights; except that
 *            a VM being walked down does not rise above `scarcityMax` (its target in force)
 *            as the others' shrinks raise that fraction: it would go up, then down again.
 * - deficit  (pool < Σ floor): VMs above their floor go down to it; VMs below it (`lower` =
 *            min(floor, allocation)) share what is left in proportion to their shortfall.
 *            Nobody is ever pushed below min(floor, allocation): if even that does not fit,
 *            Σ targets exceeds the pool and the caller says so (overcommitted).
 */
export type Mode = 'enough' | 'scarcity' | 'deficit';
export type SurplusMode = 'proportional' | 'dom0' | 'free';

export interface Bounds {
  lower: Float64Array;
  floor: Float64Array;
  want: Float64Array;
  ceiling: Float64Array;
  weight: Float64Array;
  /** The ideal: what a proportional surplus share is proportional to (× weight), as it does not
   *  drift while a VM is being walked down like the moderated demand; and what a share is
   *  counted from (a want above it already holds that much of the share). */
  shareBase: Float64Array;
  /** Under scarcity no target rises above this (a VM being walked down: its target in force;
   *  Infinity for the others). Absent: no such limit. */
  scarcityMax?: Float64Array;
  /** Index of dom0 among the managed VMs, or -1. */
  dom0: number;
}

export interface Distribution {
  mode: Mode;
  targets: Float64Array;
  /** Per VM: the share of surplus (enough) or the fraction of the range reached (scarcity/deficit). */
  extra: Float64Array;
  sumWant: number;
  sumFloor: number;
  sumLower: number;
  surplusKib: number;
}

export function distribute(b: Bounds, pool: number, surplus: SurplusMode, keepFreeKib = 0): Distribution {
  const n = b.want.length;
  let sumWant = 0;
  let sumFloor = 0;
  let sumLower = 0;
  for (let i = 0; i < n; i++) {
    sumWant += b.want[i]!;
    sumFloor += b.floor[i]!;
    sumLower += b.lower[i]!;
  }
  const targets = new Float64Array(n);
  const caps = new Float64Array(n);
  const shares = new Float64Array(n);
  let extra: Float64Array;
  let mode: Mode;
  let surplusKib = 0;
  if (pool >= sumWant) {
    mode = 'enough';
    surplusKib = pool - sumWant;
    targets.set(b.want);
    extra = new Float64Array(n);
    if (surplus === 'proportional') extra = proportionalExtra(b, Math.max(0, surplusKib - keepFreeKib));
    else if (surplus === 'dom0' && b.dom0 >= 0) {
      extra[b.dom0] = Math.floor(Math.min(Math.max(0, surplusKib - keepFreeKib), Math.max(0, b.ceiling[b.dom0]! - b.want[b.dom0]!)));
    }
    for (let i = 0; i < n; i++) targets[i]! += extra[i]!;
  } else if (pool >= sumFloor) {
    mode = 'scarcity';
    for (let i = 0; i < n; i++) {
      shares[i] = b.weight[i]! * (b.want[i]! - b.floor[i]!);
      // The same fraction for everyone, but a VM being walked down keeps at most what it has:
      // what the others' shrinks free would come back from it within a few steps.
      caps[i] = Math.max(0, Math.min(b.want[i]!, b.scarcityMax?.[i] ?? Infinity) - b.floor[i]!);
    }
    extra = waterFill(caps, shares, pool - sumFloor);
    for (let i = 0; i < n; i++) targets[i] = b.floor[i]! + extra[i]!;
  } else {
    mode = 'deficit';
    for (let i = 0; i < n; i++) {
      caps[i] = b.floor[i]! - b.lower[i]!;
      shares[i] = caps[i]!;
    }
    extra = waterFill(caps, shares, Math.max(0, pool - sumLower));
    for (let i = 0; i < n; i++) targets[i] = b.lower[i]! + extra[i]!;
  }
  return { mode, targets, extra, sumWant, sumFloor, sumLower, surplusKib };
}

/** The proportional surplus (enough): first the probes back (each probed VM up to its ideal,
 *  the same fraction of its probe each while the amount is short), then shares in proportion
 *  to weight × ideal on top of max(want, ideal). Monotone in `amount`; Σ ≤ amount. */
function proportionalExtra(b: Bounds, amount: number): Float64Array {
  const n = b.want.length;
  const probe = new Float64Array(n);
  let sumProbe = 0;
  for (let i = 0; i < n; i++) {
    probe[i] = Math.max(0, Math.min(b.shareBase[i]!, b.ceiling[i]!) - b.want[i]!);
    sumProbe += probe[i]!;
  }
  if (amount <= sumProbe) return waterFill(probe, probe, amount);
  const caps = new Float64Array(n);
  const shares = new Float64Array(n);
  const held = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const base = b.want[i]! + probe[i]!;
    caps[i] = Math.max(0, b.ceiling[i]! - base);
    shares[i] = b.weight[i]! * b.shareBase[i]!;
    held[i] = Math.max(0, base - b.shareBase[i]!);
  }
  const extra = waterFill(caps, shares, amount - sumProbe, held);
  for (let i = 0; i < n; i++) extra[i]! += probe[i]!;
  return extra;
}
