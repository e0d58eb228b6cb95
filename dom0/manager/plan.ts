import type { VmDecision } from '../../src/policy/types.js';
import type { DomainFacts } from '../host/host.js';

/**
 * From the policy's decisions to the ordered host actions. Pure.
 * - Free before allocate (squeezed's two phases): every shrink is issued first; grows only once
 *   Xen's free memory covers them (the applier waits for that, bounded).
 * - maxmem pairs with the target at target + 1 MiB (qmemman's mem_set, anchors §1.6): raised
 *   BEFORE a target raise (else the balloon stalls at the old ceiling, xen-lab §6.1), lowered
 *   AFTER a target cut (libxl refuses a ceiling below memory/target; and a lowered ceiling is
 *   what stops a lying guest from keeping memory it was asked to give back).
 * - Paused, dying, stuck and unknown domains are never touched, whatever the policy said.
 */

export const MAXMEM_SLACK_KIB = 1024;

export interface TargetAction {
  domid: number;
  name: string;
  fromKib: number | null;
  toKib: number;
  /** Set maxmem to this before (grow) or after (shrink) writing the target; null: leave it. */
  maxmemKib: number | null;
  reason: string;
}

export interface ApplyPlan {
  shrinks: TargetAction[];
  grows: TargetAction[];
  /** Decisions that asked for a change but were not applied, with why. */
  skipped: { domid: number; name: string; why: string }[];
}

export interface PlanInput {
  decisions: VmDecision[];
  facts: Map<number, DomainFacts>;
  /** Target currently in force per domid (what xmem last wrote or found). */
  targets: Map<number, number | null>;
  stuck: Set<number>;
  /** Lower maxmem with a shrink (qmemman behaviour); off saves one xl call per shrink. */
  lowerMaxmem: boolean;
}

export function planApply(input: PlanInput): ApplyPlan {
  const plan: ApplyPlan = { shrinks: [], grows: [], skipped: [] };
  for (const d of input.decisions) {
    const current = input.targets.get(d.domid) ?? null;
    if (d.targetKib === current) continue;
    const f = input.facts.get(d.domid);
    const skip = !f ? 'domain is gone' : f.paused ? 'paused' : f.dying ? 'dying' : input.stuck.has(d.domid) ? 'stuck' : null;
    if (skip) {
      plan.skipped.push({ domid: d.domid, name: d.name, why: skip });
      continue;
    }
    const target = Math.max(0, Math.round(d.targetKib));
    const wantMax = target + MAXMEM_SLACK_KIB;
    const base = current ?? f!.actualKib;
    if (target > base) {
      plan.grows.push({
        domid: d.domid, name: d.name, fromKib: current, toKib: target,
        maxmemKib: f!.maxmemKib < wantMax ? wantMax : null,
        reason: d.reason,
      });
    } else {
      plan.shrinks.push({
        domid: d.domid, name: d.name, fromKib: current, toKib: target,
        maxmemKib: input.lowerMaxmem && f!.maxmemKib > wantMax ? wantMax : null,
        reason: d.reason,
      });
    }
  }
  return plan;
}

/**
 * Where each grow starts from: the higher of its allocation and the target already in force
 * (memory up to that target is already promised to it and counted as such, grown or not).
 */
export type GrowBase = (g: TargetAction, facts: Map<number, DomainFacts>) => number;

export const baseFromPlan: GrowBase = (g, facts) => Math.max(facts.get(g.domid)?.actualKib ?? 0, g.fromKib ?? 0);

/** KiB the grows will take beyond what is already promised to them. */
export function growNeedKib(grows: TargetAction[], facts: Map<number, DomainFacts>, base: GrowBase = baseFromPlan): number {
  return grows.reduce((s, g) => s + Math.max(0, g.toKib - base(g, facts)), 0);
}

/**
 * When free memory does not cover every grow after the bounded wait: grant grows in order
 * while they fit; the first that does not fit gets what is left (never below the target it
 * already has), the rest wait for a later pass (keeping their targets, still promised).
 * Returns the grows to apply (possibly trimmed).
 */
export function fitGrows(grows: TargetAction[], facts: Map<number, DomainFacts>, availableKib: number, base: GrowBase = baseFromPlan): TargetAction[] {
  const out: TargetAction[] = [];
  let left = Math.max(0, availableKib);
  for (const g of grows) {
    const from = base(g, facts);
    const need = Math.max(0, g.toKib - from);
    if (need <= left) {
      out.push(g);
      left -= need;
      continue;
    }
    if (left >= MAXMEM_SLACK_KIB) {
      const toKib = from + left;
      out.push({ ...g, toKib, maxmemKib: g.maxmemKib === null ? null : toKib + MAXMEM_SLACK_KIB, reason: `${g.reason} (partial: Xen free memory short)` });
    }
    break;
  }
  return out;
}
