import type { PolicyConfig } from './config.js';
import type { HostSnapshot, PolicyResult, VmHistory } from './types.js';
import { estimate } from './estimate.js';
import { fmt } from './common.js';
import { heldDecision, holdOf } from './held.js';

/**
 * `policy: static`: no balancing. Every VM keeps the target in force (pins are applied);
 * floors and ideals are still estimated and shown, so an admin can watch what the xmem
 * policy would want before switching to it.
 */
export function decideStatic(snap: HostSnapshot, cfg: PolicyConfig): PolicyResult {
  const history: Record<number, VmHistory> = {};
  const decisions = snap.vms.map((vm) => {
    const hold = holdOf(vm) ?? { kind: 'nosignal' as const, why: 'static policy' };
    const d = heldDecision(vm, hold, cfg).decision;
    history[vm.domid] = { ...vm.history, lastTargetKib: d.targetKib };
    const est = hold.kind === 'pinned' ? null : estimate(vm, cfg);
    if (!est) return d;
    return {
      ...d,
      idealKib: est.idealKib,
      floorKib: est.floorKib,
      reason: `static policy: held at ${fmt(d.targetKib)} (xmem would want ideal ${fmt(est.idealKib)}, floor ${fmt(est.floorKib)})`,
    };
  });
  return { decisions, summary: `static: ${snap.vms.length} VMs held, no balancing`, history };
}
