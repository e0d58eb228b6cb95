import type { Clock } from '../../src/clock.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import type { DomainFacts, HostFacts, XenHost } from '../host/host.js';
import { keys } from './keys.js';
import { MAXMEM_SLACK_KIB, baseFromPlan, fitGrows, growNeedKib, type ApplyPlan, type GrowBase, type TargetAction } from './plan.js';

/**
 * Executes an ApplyPlan: shrinks, then a bounded wait until Xen's free memory (minus the
 * reserve, memory already promised to other growing VMs and memory reserved for VM starts)
 * covers the grows, then grows.
 */

export interface ApplyOptions {
  /** Xen memory never handed out (Xen's low_mem_virq_limit is 64 MiB; anchors §10.2). */
  reserveKib: number;
  /** How long to wait for shrinks to free memory before granting what is there. */
  waitMaxMs: number;
  waitPollMs: number;
}

export interface Applied {
  action: TargetAction;
  phase: 'shrink' | 'grow';
}

export interface ApplyResult {
  applied: Applied[];
  /** Grows left for a later pass (free memory short after the wait), and failed writes. */
  deferred: { domid: number; name: string; why: string }[];
  /** Facts after the wait, if one happened. */
  facts: HostFacts | null;
}

export interface ApplyDeps {
  xs: XenstoreClient;
  host: XenHost;
  clock: Clock;
  /** KiB promised to VMs (this plan's growers included) not yet grown into their targets. */
  promisedKib: (facts: Map<number, DomainFacts>) => number;
  /** The target in force now (it may change during the wait); default: the plan's fromKib. */
  targetKib?: (domid: number) => number | null;
  /** KiB admission reservations still hold back (memory freed for a VM start is not for
   *  growth); read again at every poll of the wait, so one made meanwhile counts at once. */
  reservedKib?: () => number;
  onApplied: (a: Applied) => void;
  /** Called with fresh facts at every poll of the wait (the manager re-reads reservations);
   *  a ceiling it lowers is written back into those facts. */
  onPoll?: (facts: HostFacts) => Promise<void>;
  /** Why no VM may grow now (a VM start is being admitted), or null. Read before the wait and
   *  at every poll: while it holds, every grow is deferred at once, without waiting. */
  growthHeld?: () => string | null;
}

export async function applyPlan(plan: ApplyPlan, facts: HostFacts, deps: ApplyDeps, opts: ApplyOptions): Promise<ApplyResult> {
  const result: ApplyResult = { applied: [], deferred: [], facts: null };

  // Within a phase the VMs are independent: their requests go out together (pipelined).
  await Promise.all(plan.shrinks.map(async (a) => {
    if (await attempt(result, a, () => writeTarget(deps.xs, a))) {
      const applied: Applied = { action: a, phase: 'shrink' };
      result.applied.push(applied);
      deps.onApplied(applied);
      // The cut is in force even if lowering the ceiling fails; that is retried next shrink.
      if (a.maxmemKib !== null) await attempt(result, a, () => deps.host.setMaxmem(a.domid, a.maxmemKib!));
    }
  }));
  if (plan.grows.length === 0) return result;
  const held = () => deps.growthHeld?.() ?? null;

  let now = facts;
  let byId = index(now);
  const deadline = deps.clock.now() + opts.waitMaxMs;
  let available = availableKib(now, byId, deps, opts);
  // A grow needs only what lies above the target it already has: that part is in promisedKib.
  const base: GrowBase = deps.targetKib
    ? (g, f) => Math.max(f.get(g.domid)?.actualKib ?? 0, deps.targetKib!(g.domid) ?? 0)
    : baseFromPlan;
  // Only wait when something was asked to shrink: otherwise nothing will free memory soon.
  while (held() === null && available < growNeedKib(plan.grows, byId, base) && plan.shrinks.length > 0 && deps.clock.now() < deadline) {
    await deps.clock.sleep(opts.waitPollMs);
    now = await deps.host.facts();
    byId = index(now);
    result.facts = now;
    await deps.onPoll?.(now);
    available = availableKib(now, byId, deps, opts);
  }
  const why = held();
  if (why !== null) {
    for (const g of plan.grows) result.deferred.push({ domid: g.domid, name: g.name, why });
    return result;
  }
  const grows = fitGrows(plan.grows, byId, available, base);
  for (const g of plan.grows.slice(grows.length)) {
    result.deferred.push({ domid: g.domid, name: g.name, why: 'Xen free memory short; retried next pass' });
  }

  await Promise.all(grows.map(async (a) => {
    // The ceiling may have been lowered during the wait (a VM held for a reservation).
    const ceiling = byId.get(a.domid)?.maxmemKib;
    const maxmemKib = a.maxmemKib ?? (ceiling !== undefined && ceiling < a.toKib + MAXMEM_SLACK_KIB ? a.toKib + MAXMEM_SLACK_KIB : null);
    // Per VM the order holds: the ceiling is raised before the target.
    if (await attempt(result, a, async () => {
      if (maxmemKib !== null) await deps.host.setMaxmem(a.domid, maxmemKib);
      await writeTarget(deps.xs, a);
    })) {
      const applied: Applied = { action: a, phase: 'grow' };
      result.applied.push(applied);
      deps.onApplied(applied);
    }
  }));
  return result;
}

function availableKib(facts: HostFacts, byId: Map<number, DomainFacts>, deps: ApplyDeps, opts: ApplyOptions): number {
  return facts.freeKib - opts.reserveKib - deps.promisedKib(byId) - (deps.reservedKib?.() ?? 0);
}

function index(facts: HostFacts): Map<number, DomainFacts> {
  return new Map(facts.domains.map((d) => [d.domid, d]));
}

async function writeTarget(xs: XenstoreClient, a: TargetAction): Promise<void> {
  await xs.write(keys(a.domid).target, String(a.toKib));
}

/** One VM's failure (it vanished, xl refused) never stops the others. */
async function attempt(result: ApplyResult, a: TargetAction, fn: () => Promise<void>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    result.deferred.push({ domid: a.domid, name: a.name, why: `apply failed: ${err instanceof Error ? err.message : String(err)}` });
    return false;
  }
}
