import type { PolicyConfig } from './config.js';
import type { HostSnapshot, PolicyResult, VmDecision, VmHistory } from './types.js';
import { MAXMEM_SLACK_KIB, ceilingOf, changeOf, clamp, currentTarget, fmt, poolKib } from './common.js';
import { heldDecision, holdOf } from './held.js';

/**
 * `policy: squeezed`: XenServer's squeezed rule (squeeze.ml, anchors §2.1): no guest signal;
 * every running VM gets dynamic-min + γ × (dynamic-max − dynamic-min) with one γ for all,
 * γ = clamp(surplus / Σ range, 0, 1), surplus = pool − Σ dynamic-min. dynamic-max is the VM's
 * ceiling; dynamic-min is its `min` override, else max(vmMin, dynamicMinRatio × static-max)
 * (dom0: dom0.floor). When the pool is below Σ dynamic-min everyone sits at dynamic-min
 * (squeezed would refuse the VM start that caused it). No hysteresis beyond integer KiB:
 * squeezed has none either (its 512 KiB tolerance is on free memory).
 */
export function decideSqueezed(snap: HostSnapshot, cfg: PolicyConfig): PolicyResult {
  const decisions: (VmDecision | null)[] = new Array(snap.vms.length).fill(null);
  const history: Record<number, VmHistory> = {};
  const idx: number[] = [];
  const dmin: number[] = [];
  const dmax: number[] = [];
  let heldGrowth = 0;
  let managedActual = 0;
  let sumMin = 0;
  let sumRange = 0;
  snap.vms.forEach((vm, k) => {
    const hold = holdOf(vm);
    if (hold) {
      const r = heldDecision(vm, hold, cfg);
      decisions[k] = r.decision;
      heldGrowth += r.growthKib;
      history[vm.domid] = { ...vm.history, lastTargetKib: r.decision.targetKib };
      return;
    }
    const max = ceilingOf(vm);
    const base = vm.domid === 0 ? cfg.dom0.floor : Math.max(cfg.vmMin, Math.round(cfg.squeezed.dynamicMinRatio * vm.staticMaxKib));
    const min = clamp(vm.override?.minKib ?? base, 0, max);
    idx.push(k);
    dmin.push(min);
    dmax.push(max);
    sumMin += min;
    sumRange += max - min;
    managedActual += vm.actualKib;
  });
  const reserved = snap.reservations.reduce((s, r) => s + r.kib, 0);
  const pool = poolKib(snap.freeKib, cfg.hostFreeReserve, reserved, heldGrowth, managedActual);
  const surplus = Math.max(0, pool - sumMin);
  const gamma = sumRange > 0 ? clamp(surplus / sumRange, 0, 1) : 1;
  for (let i = 0; i < idx.length; i++) {
    const vm = snap.vms[idx[i]!]!;
    const min = dmin[i]!;
    const max = dmax[i]!;
    const target = min + Math.floor(gamma * (max - min));
    const cur = currentTarget(vm);
    decisions[idx[i]!] = {
      domid: vm.domid,
      name: vm.name,
      idealKib: max,
      floorKib: min,
      targetKib: target,
      maxmemKib: target + MAXMEM_SLACK_KIB,
      change: changeOf(target, cur),
      reason: `squeezed: ${Math.round(gamma * 100)}% of the way from dynamic-min ${fmt(min)} to dynamic-max ${fmt(max)} (same fraction for every VM)`,
      managed: true,
    };
    history[vm.domid] = { ...vm.history, lastTargetKib: target };
  }
  const over = pool < sumMin ? `; OVERCOMMITTED: dynamic-mins need ${fmt(sumMin)}` : '';
  return {
    decisions: decisions as VmDecision[],
    summary: `squeezed: pool ${fmt(pool)}, Σ dynamic-min ${fmt(sumMin)}, γ = ${gamma.toFixed(3)}; ${idx.length} managed, ${snap.vms.length - idx.length} held${over}`,
    history,
  };
}
