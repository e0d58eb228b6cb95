import type { HostSnapshot, Reservation, VmDecision, VmSnapshot } from '../../src/policy/types.js';

/**
 * The admission planner (pure): can `neededKib` more be handed to a VM about to start?
 *
 * Memory that can be handed out right now is Xen free memory minus the reserve Xen keeps, minus
 * live reservations not yet taken by their VM, and minus growth still in flight (targets above
 * allocations: those balloons are taking free memory as we look). Beyond that only the surplus above each
 * VM's floor can be reclaimed (qmemman's balloon(): never below prefmem). When even that is not
 * enough the request is refused at once with everything a user needs to act: what is missing,
 * what each VM could give, and the fewest VMs whose shutdown would make the start fit.
 */

export interface AdmissionInput {
  snapshot: HostSnapshot;
  /** The policy's last decisions (floors); a VM without one is never squeezed. */
  decisions: readonly VmDecision[];
  /** Xen free memory now (KiB); defaults to the snapshot's. Growth still in flight in the
   *  snapshot (`growingKib`) is subtracted from it either way. */
  freeKib?: number;
  /** Live reservations other than this request (KiB still owed to each). */
  reservations: readonly Reservation[];
  /** Xen memory never handed out. */
  reserveKib: number;
  neededKib: number;
  /** The VM the memory is for: never proposed for shutdown. */
  forName?: string;
}

export interface Donor {
  domid: number;
  name: string;
  actualKib: number;
  floorKib: number;
  /** actual − floor: the most this VM can give without going below its floor. */
  surplusKib: number;
  /** What it is asked to give for this request (0 when it fits now or is refused). */
  giveKib: number;
}

export interface ShutdownCandidate {
  domid: number;
  name: string;
  /** Its whole allocation. */
  actualKib: number;
}

export interface Refusal {
  neededKib: number;
  /** Free memory that could be handed out now (after the reserve, other reservations and
   *  growth in flight). */
  availableKib: number;
  /** Σ surplus above floors of the VMs that can be squeezed. */
  reclaimableKib: number;
  /** neededKib − (available + reclaimable): what is missing even at every floor. */
  missingKib: number;
  donors: Donor[];
  /** Fewest VMs whose shutdown makes it fit (in the order to suggest); null: nothing would. */
  shutdown: ShutdownCandidate[] | null;
  /** Every single VM whose shutdown alone would make it fit (when `shutdown` has one VM). */
  shutdownAlternatives: ShutdownCandidate[];
}

export type AdmissionPlan =
  | { kind: 'fits-now'; neededKib: number; availableKib: number }
  | { kind: 'squeeze'; neededKib: number; availableKib: number; shortfallKib: number; reclaimableKib: number; donors: Donor[] }
  | { kind: 'refused'; refusal: Refusal };

/** A VM whose balloon can be asked to move now: running, managed by the policy, not stuck. */
function squeezable(vm: VmSnapshot, d: VmDecision | undefined): d is VmDecision {
  return d !== undefined && d.managed && !vm.paused && !vm.dying && !vm.stuck;
}

/** A balloon this close below its target has arrived (xl list rounds to MiB). */
const GROWING_SLACK_KIB = 1024;

/**
 * Growth in flight: what balloons below their targets will still take from Xen free memory
 * (up to their ceiling), so free memory that is not free for a VM start. The manager holds
 * growers at their allocation while a start is admitted; this counts what it could not hold
 * (paused or pinned VMs, targets written by someone else, a grow racing the hold).
 */
export function growingKib(snapshot: HostSnapshot): number {
  let sum = 0;
  for (const vm of snapshot.vms) {
    if (vm.dying || vm.targetKib === null) continue;
    const gap = Math.min(vm.targetKib, vm.maxmemKib) - vm.actualKib;
    if (gap > GROWING_SLACK_KIB) sum += gap;
  }
  return sum;
}

export function planAdmission(input: AdmissionInput): AdmissionPlan {
  const neededKib = Math.max(0, Math.ceil(input.neededKib));
  const freeKib = (input.freeKib ?? input.snapshot.freeKib) - growingKib(input.snapshot);
  const reservedKib = input.reservations.reduce((s, r) => s + Math.max(0, r.kib), 0);
  const availableKib = Math.max(0, freeKib - input.reserveKib - reservedKib);
  if (availableKib >= neededKib) return { kind: 'fits-now', neededKib, availableKib };

  const byDomid = new Map(input.decisions.map((d) => [d.domid, d]));
  const donors: Donor[] = [];
  for (const vm of input.snapshot.vms) {
    const d = byDomid.get(vm.domid);
    if (!squeezable(vm, d)) continue;
    const surplusKib = Math.max(0, vm.actualKib - d.floorKib);
    if (surplusKib > 0) {
      donors.push({ domid: vm.domid, name: vm.name, actualKib: vm.actualKib, floorKib: d.floorKib, surplusKib, giveKib: 0 });
    }
  }
  donors.sort((a, b) => b.surplusKib - a.surplusKib || a.domid - b.domid);
  const reclaimableKib = donors.reduce((s, d) => s + d.surplusKib, 0);
  const shortfallKib = neededKib - availableKib;

  if (reclaimableKib >= shortfallKib) {
    return { kind: 'squeeze', neededKib, availableKib, shortfallKib, reclaimableKib, donors: share(donors, shortfallKib, reclaimableKib) };
  }

  const missingKib = shortfallKib - reclaimableKib;
  const { shutdown, alternatives } = fewestShutdowns(input, donors, missingKib);
  return {
    kind: 'refused',
    refusal: { neededKib, availableKib, reclaimableKib, missingKib, donors, shutdown, shutdownAlternatives: alternatives },
  };
}

/**
 * Splits `shortfall` over donors in proportion to their surplus (qmemman's balloon()), in whole
 * KiB that add up exactly, nobody giving more than its surplus (largest remainders get the rest).
 */
function share(donors: Donor[], shortfall: number, total: number): Donor[] {
  const exact = donors.map((d) => (shortfall * d.surplusKib) / total);
  const out = donors.map((d, i) => ({ ...d, giveKib: Math.min(d.surplusKib, Math.floor(exact[i]!)) }));
  let left = shortfall - out.reduce((s, d) => s + d.giveKib, 0);
  const order = out.map((_, i) => i).sort((a, b) => (exact[b]! % 1) - (exact[a]! % 1) || a - b);
  // One more KiB each, largest remainder first: exact ≤ surplus (an integer), so ceil(exact) fits.
  for (const i of order) {
    if (left <= 0) break;
    if (out[i]!.giveKib < out[i]!.surplusKib) {
      out[i]!.giveKib += 1;
      left -= 1;
    }
  }
  return out;
}

/**
 * Shutting a VM down frees its whole allocation; its surplus was already counted as reclaimable,
 * so the gain over squeezing is the rest (min(actual, floor), or all of it for a VM that cannot
 * be squeezed). Taking the largest gains first gives the fewest VMs; the last one is then swapped
 * for the smallest VM that still completes the fit, so the suggestion stops no more than needed.
 */
function fewestShutdowns(input: AdmissionInput, donors: Donor[], missingKib: number) {
  const surplus = new Map(donors.map((d) => [d.domid, d.surplusKib]));
  const candidates = input.snapshot.vms
    .filter((vm) => vm.domid !== 0 && !vm.dying && vm.name !== input.forName)
    .map((vm) => ({ domid: vm.domid, name: vm.name, actualKib: vm.actualKib, gain: vm.actualKib - (surplus.get(vm.domid) ?? 0) }))
    .filter((c) => c.gain > 0)
    .sort((a, b) => b.gain - a.gain || a.actualKib - b.actualKib || a.domid - b.domid);

  const strip = ({ domid, name, actualKib }: ShutdownCandidate) => ({ domid, name, actualKib });
  const alternatives = candidates.filter((c) => c.gain >= missingKib).reverse().map(strip);

  let got = 0;
  let k = 0;
  while (k < candidates.length && got < missingKib) got += candidates[k++]!.gain;
  if (got < missingKib) return { shutdown: null, alternatives };

  const head = candidates.slice(0, k - 1);
  const still = missingKib - head.reduce((s, c) => s + c.gain, 0);
  const rest = candidates.slice(k - 1);
  let last = rest[0]!;
  for (const c of rest) {
    if (c.gain >= still && (c.gain < last.gain || (c.gain === last.gain && c.actualKib < last.actualKib))) last = c;
  }
  return { shutdown: [...head, last].map(strip), alternatives: k === 1 ? alternatives : [] };
}
