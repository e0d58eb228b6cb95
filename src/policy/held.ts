import type { PolicyConfig } from './config.js';
import type { VmDecision, VmSnapshot } from './types.js';
import { MAXMEM_SLACK_KIB, ceilingOf, changeOf, clamp, currentTarget, fmt, minOf } from './common.js';

/**
 * VMs a policy does not balance this pass, and the fixed target each keeps. A held VM is
 * never squeezed: the memory it holds (or may still grow into) is left out of the pool.
 */
export type HoldKind = 'dying' | 'paused' | 'stuck' | 'pinned' | 'nosignal';

export interface Hold {
  kind: HoldKind;
  why: string;
}

/** Reasons every policy holds a VM (the xmem policy adds `nosignal`). */
export function holdOf(vm: VmSnapshot): Hold | null {
  if (vm.dying) return { kind: 'dying', why: 'dying' };
  if (vm.paused) return { kind: 'paused', why: 'paused' };
  if (vm.stuck) return { kind: 'stuck', why: 'stuck (no progress toward its target)' };
  if (vm.override?.pinKib !== undefined) return { kind: 'pinned', why: `pinned at ${fmt(vm.override.pinKib)} by config` };
  return null;
}

/** The xmem policy also holds VMs without a usable guest signal. */
export function signalHold(vm: VmSnapshot, cfg: PolicyConfig): Hold | null {
  const s = vm.signal;
  if (s.kind === 'none') return { kind: 'nosignal', why: `no valid guest signal (${s.why.slice(0, 80)})` };
  if (s.kind === 'xmem' && s.ageMs > cfg.staleReportMs) {
    return { kind: 'nosignal', why: `report is ${Math.round(s.ageMs / 1000)} s old (stale after ${Math.round(cfg.staleReportMs / 1000)} s)` };
  }
  return null;
}

export interface HeldResult {
  decision: VmDecision;
  /** Memory the VM may still take from Xen's free pool (its target above its allocation). */
  growthKib: number;
}

export function heldDecision(vm: VmSnapshot, hold: Hold, cfg: PolicyConfig): HeldResult {
  const current = currentTarget(vm);
  let target = current;
  let reason: string;
  if (hold.kind === 'pinned') {
    target = clamp(vm.override!.pinKib!, 0, vm.staticMaxKib);
    reason = `${hold.why}: not balanced`;
  } else if (hold.kind === 'nosignal' && cfg.noSignalTarget !== 'hold') {
    target = clamp(Math.max(cfg.noSignalTarget, minOf(vm, cfg)), 0, ceilingOf(vm));
    reason = `${hold.why}: fixed safe target ${fmt(target)} (noSignalTarget), never squeezed`;
  } else {
    reason = `${hold.why}: held at ${fmt(target)} (allocation ${fmt(vm.actualKib)}), not balanced`;
  }
  const maxmem = target === current ? vm.maxmemKib : target + MAXMEM_SLACK_KIB;
  return {
    decision: {
      domid: vm.domid,
      name: vm.name,
      idealKib: target,
      floorKib: target,
      targetKib: target,
      maxmemKib: maxmem,
      change: changeOf(target, current),
      reason,
      managed: false,
    },
    growthKib: Math.max(0, Math.max(target, current) - vm.actualKib),
  };
}
