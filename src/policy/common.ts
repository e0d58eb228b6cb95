import type { PolicyConfig } from './config.js';
import type { VmSnapshot } from './types.js';

/** Xen's creation slack (LIBXL_MAXMEM_CONSTANT): maxmem sits this far above the target. */
export const MAXMEM_SLACK_KIB = 1024;

/** The target in force for a VM: what was last written, else what it has. */
export function currentTarget(vm: VmSnapshot): number {
  return vm.targetKib ?? vm.actualKib;
}

/** The most a VM may be given: its static-max, lowered by an admin `max` override. */
export function ceilingOf(vm: VmSnapshot): number {
  const max = vm.override?.maxKib;
  return Math.max(0, max !== undefined ? Math.min(vm.staticMaxKib, max) : vm.staticMaxKib);
}

/** The admin's minimum for a VM: its `min` override, else the default (dom0: its own floor). */
export function minOf(vm: VmSnapshot, cfg: PolicyConfig): number {
  const base = vm.domid === 0 ? cfg.dom0.floor : cfg.vmMin;
  return vm.override?.minKib ?? base;
}

export function weightOf(vm: VmSnapshot, cfg: PolicyConfig): number {
  return vm.override?.weight ?? (vm.domid === 0 ? cfg.dom0.weight : cfg.defaultWeight);
}

export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/** KiB as a short human size: 512M, 1.50G, 12.5G. Integer arithmetic only: this runs a few
 *  times per VM per pass, and Number#toFixed is the slowest thing in a pass otherwise. */
export function fmt(kib: number): string {
  const neg = kib < 0 ? '-' : '';
  const k = Math.abs(kib);
  if (k < 1024 * 1024) return `${neg}${Math.round(k / 1024)}M`;
  if (k < 10 * 1024 * 1024) {
    const c = Math.round((k * 100) / (1024 * 1024));
    const f = c % 100;
    return `${neg}${(c - f) / 100}.${f < 10 ? '0' : ''}${f}G`;
  }
  const d = Math.round((k * 10) / (1024 * 1024));
  return `${neg}${(d - (d % 10)) / 10}.${d % 10}G`;
}

export function changeOf(target: number, current: number): 'grow' | 'shrink' | 'hold' {
  return target > current ? 'grow' : target < current ? 'shrink' : 'hold';
}

/**
 * Memory the managed VMs may share this pass: Xen's free memory plus what they hold now,
 * minus the host free reserve, admission reservations and what held VMs are still entitled
 * to take (a held target above its allocation).
 */
export function poolKib(freeKib: number, reserveKib: number, reservedKib: number, heldGrowthKib: number, managedActualKib: number): number {
  return freeKib - reserveKib - reservedKib - heldGrowthKib + managedActualKib;
}
