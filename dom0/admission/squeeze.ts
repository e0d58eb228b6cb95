import type { Clock } from '../../src/clock.js';
import type { HostSnapshot } from '../../src/policy/types.js';
import type { Donor } from './plan.js';
import { RateWindow, type RateRule } from './rate.js';
import { fmtSize } from './words.js';

/**
 * Waits for a squeeze: the reservation is already in the book (the policy counts it as used
 * and lowers other VMs toward their floors), so this only asks for passes and watches Xen free
 * memory grow until it covers the request. It gives up early under qmemman's rate rule and
 * names the donors that did not move, so a dead balloon driver costs 3 s, not a hung start.
 */

/** Within this of its target a VM has arrived (xl list rounds to MiB; HVM video RAM offsets). */
const ABOVE_TARGET_KIB = 16 * 1024;

export interface SqueezeDeps {
  clock: Clock;
  /** The latest facts the manager saw (refreshed by the passes we request). */
  snapshot: () => HostSnapshot | null;
  requestPass: () => void;
}

export interface SqueezeGoal {
  /** Success once Xen free memory ≥ this (request + margin + what other reservations still hold
   *  + growth still in flight). */
  freeKib: () => number;
  donors: readonly Donor[];
  rule: RateRule;
  pollMs: number;
  /** A donor that gave less than this over the last period "did not move". */
  movedKib: number;
  /** Hard bound on the whole wait, whatever the rate (a reservation's timeout, say). */
  maxMs: number;
  /** Aborts the wait (the client went away). */
  cancelled?: () => boolean;
  /**
   * Donors stalled above their targets while the others could still give: exclude the
   * stalled ones (the manager flags them stuck, the policy takes more from the others) and go
   * on with a fresh rate window, instead of refusing. False: refuse as usual.
   */
  exclude?: (stalled: readonly Donor[], shortKib: number) => boolean;
}

export type SqueezeResult =
  | { ok: true; freeKib: number; waitedMs: number }
  | { ok: false; freeKib: number; waitedMs: number; why: string; stuck: string[] };

export async function waitForFree(deps: SqueezeDeps, goal: SqueezeGoal): Promise<SqueezeResult> {
  const t0 = deps.clock.now();
  // Per donor: allocation samples, negated so "freed" is a gain.
  const gave = new Map(goal.donors.map((d) => [d.domid, new RateWindow(goal.rule)]));
  let donors = goal.donors;
  let free = new RateWindow(goal.rule);
  for (;;) {
    const snap = deps.snapshot();
    const now = deps.clock.now();
    const freeKib = snap?.freeKib ?? 0;
    const waitedMs = now - t0;
    if (snap && freeKib >= goal.freeKib()) return { ok: true, freeKib, waitedMs };
    if (goal.cancelled?.()) return { ok: false, freeKib, waitedMs, why: 'cancelled: the client went away', stuck: [] };
    if (snap) {
      free.add({ atMs: now, kib: freeKib });
      for (const vm of snap.vms) gave.get(vm.domid)?.add({ atMs: now, kib: -vm.actualKib });
    }
    if (free.tooSlow()) {
      // Stuck: still above the target it was given (it was asked for more) yet gave nothing
      // over the window. A donor that reached its target is not to blame.
      const vms = new Map((snap?.vms ?? []).map((vm) => [vm.domid, vm]));
      const stalled = donors
        .filter((d) => {
          const vm = vms.get(d.domid);
          if (!vm) return false;
          const asked = Math.max(d.floorKib, vm.targetKib ?? d.floorKib);
          return vm.actualKib > asked + ABOVE_TARGET_KIB && (gave.get(d.domid)?.gainedKib() ?? 0) < goal.movedKib;
        });
      if (stalled.length > 0 && stalled.length < donors.length && goal.exclude?.(stalled, goal.freeKib() - freeKib)) {
        donors = donors.filter((d) => !stalled.includes(d));
        free = new RateWindow(goal.rule);
        deps.requestPass();
        await deps.clock.sleep(goal.pollMs);
        continue;
      }
      // After a re-plan the donors left may be slower than the rule (a balloon that stalls
      // now and then): while one of them still moves and free memory grows, keep waiting
      // (bounded by maxMs); the rule is for dead balloons, not slow ones.
      if (stalled.length === 0 && donors !== goal.donors && free.gainedKib() >= goal.movedKib
        && donors.some((d) => (gave.get(d.domid)?.gainedKib() ?? 0) >= goal.movedKib)
        && waitedMs < goal.maxMs) {
        deps.requestPass();
        await deps.clock.sleep(goal.pollMs);
        continue;
      }
      const stuck = stalled.map((d) => d.name);
      const period = `${Math.round(free.spanMs() / 100) / 10} s`;
      const freed = `only ${fmtSize(Math.max(0, free.gainedKib()))} was freed in ${period} (less than ${Math.round(goal.rule.minKibPerS / 1024)} MiB/s)`;
      const why = stuck.length > 0
        ? `${freed}: ${stuck.join(', ')} did not give memory back (balloon driver stuck or absent?)`
        : `${freed}: the VMs are giving memory back too slowly`;
      return { ok: false, freeKib, waitedMs, why, stuck };
    }
    if (waitedMs >= goal.maxMs) {
      return { ok: false, freeKib, waitedMs, why: `gave up after ${Math.round(waitedMs / 1000)} s with ${fmtSize(freeKib)} free`, stuck: [] };
    }
    deps.requestPass();
    await deps.clock.sleep(goal.pollMs);
  }
}
