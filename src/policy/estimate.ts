import type { PolicyConfig } from './config.js';
import type { VmSnapshot } from './types.js';
import { ceilingOf, clamp, fmt, minOf } from './common.js';

/**
 * Floor and ideal of one VM from its guest signal (xmem policy). All results are KiB of Xen
 * allocation: guest-side numbers get the gap (Xen allocation − MemTotal: kernel, memmap,
 * firmware, ~60 MiB on the lab's guests) added back.
 *
 * - floor = unreclaimable + max(headroom, hot page cache) + gap, at least the VM's min. "Unreclaimable" is what is
 *   in use minus what the kernel can drop (file LRU, SReclaimable): anon, shmem, SUnreclaim,
 *   page tables, stacks… plus swap in use. Swap never lowers it: ballooning a guest into swap
 *   is a performance cliff, and below its working set a guest dies within seconds
 *   (xen-lab §6.3).
 * - ideal = max(Committed_AS, unreclaimable) + cache allowance + gap (dom0: + boost).
 * Both within [0, ceiling]; ideal ≥ floor.
 */
export interface Estimate {
  floorKib: number;
  idealKib: number;
  ceilingKib: number;
  /** How the ideal was made, for the decision's reason. */
  detail: string;
}

export function cacheAllowance(baseKib: number, activeFileKib: number, cfg: PolicyConfig): number {
  const byFraction = Math.round(cfg.cacheFraction * baseKib);
  const byActive = cfg.cacheUsesActiveFile ? activeFileKib : 0;
  return Math.min(cfg.cacheMax, Math.max(cfg.cacheMin, byFraction, byActive));
}

/** Returns null for a VM without a usable signal (the caller holds it). */
export function estimate(vm: VmSnapshot, cfg: PolicyConfig): Estimate | null {
  const s = vm.signal;
  let floor0: number;
  let ideal0: number;
  let detail: string;
  switch (s.kind) {
    case 'xmem': {
      const r = s.report;
      const allocation = r.bcur !== null && r.bcur > 0 ? r.bcur : vm.actualKib;
      const gap = clamp(allocation - r.total, 0, cfg.gapMax);
      // Anonymous memory already pushed to swap is still the guest's (qmemman counts it as
      // used too): leaving it out would lower the floor of a swapping guest, squeeze it
      // further and make it swap more.
      const swapped = Math.max(0, r.swtot - r.swfree);
      const unrec = Math.max(0, r.total - r.free - r.afile - r.ifile - r.srec) + swapped;
      const base = Math.max(r.commit, unrec);
      const cache = cacheAllowance(r.commit, r.afile, cfg);
      // The hot page cache (Active(file)) is working set too: squeezing it out makes the
      // guest refault and stall, so it counts in the floor (bounded by cacheMax).
      const hotCache = cfg.floorUsesActiveFile ? Math.min(r.afile, cfg.cacheMax) : 0;
      floor0 = unrec + Math.max(cfg.floorHeadroom, hotCache) + gap;
      ideal0 = base + cache + gap;
      detail = `${r.commit >= unrec ? 'Committed_AS' : 'unreclaimable'} ${fmt(base)} + cache ${fmt(cache)} + gap ${fmt(gap)}`;
      break;
    }
    case 'qubes': {
      // meminfo-writer's "used" is already on the Xen side of the gap (MemTotal is replaced
      // by the balloon's current_kb) and counts swap in use.
      const used = s.usedKib;
      floor0 = used + cfg.floorHeadroom;
      ideal0 = Math.max(Math.round(used * cfg.qmemman['cache-margin-factor']), used + cfg.cacheMin);
      detail = `used ${fmt(used)} × ${cfg.qmemman['cache-margin-factor']} (Qubes meminfo)`;
      break;
    }
    case 'xapi': {
      // XAPI agents publish MemAvailable as "free": what is not available is in use.
      const used = Math.max(0, s.totalKib - s.freeKib);
      const gap = clamp((s.allocKib ?? vm.actualKib) - s.totalKib, 0, cfg.gapMax);
      const cache = cacheAllowance(used, 0, cfg);
      floor0 = used + cfg.floorHeadroom + gap;
      ideal0 = used + cache + gap;
      detail = `used ${fmt(used)} + cache ${fmt(cache)} + gap ${fmt(gap)} (XAPI meminfo)`;
      break;
    }
    case 'none':
      return null;
  }
  if (vm.domid === 0) {
    ideal0 += cfg.dom0.boost;
    detail += ` + dom0 boost ${fmt(cfg.dom0.boost)}`;
  }
  const ceiling = ceilingOf(vm);
  const floor = clamp(Math.max(floor0, minOf(vm, cfg)), 0, ceiling);
  const ideal = clamp(ideal0, floor, ceiling);
  return { floorKib: floor, idealKib: ideal, ceilingKib: ceiling, detail };
}
