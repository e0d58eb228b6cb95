import { MIB } from '../../src/units.js';
import type { GuestReport, Psi } from '../../src/schemas/report.js';
import type { Demand } from './workload.js';

/**
 * A Linux guest's memory, coarsely: given its Xen allocation and what its programs want, it
 * decides what is resident, swapped and cached, and derives meminfo, vmstat and PSI the way
 * the kernel would expose them. Pure state machine: `step` with the allocation and demand.
 *
 * - MemTotal = allocation − gap (the ≈60 MiB Xen/firmware/kernel-image difference).
 * - Kernel slab and page tables take a fixed share; a small free reserve is kept (min_free).
 * - Anonymous memory above what fits goes to swap (swap-out); when swap is full, the OOM
 *   killer kills (counted) and the demand it freed comes back only slowly (a user restarts).
 * - The page cache holds what is left: the working set first, then cold file data. A working
 *   set that does not fit refaults (re-read from disk) continuously.
 * - Tasks stall (PSI) in proportion to how much of the working set (anon + hot cache) is not
 *   resident; `full` when the shortfall is large enough that nothing runs.
 */

export interface GuestParams {
  gapKib: number;
  swapKib: number;
  coldCacheKib: number;
}

const KERNEL_UNRECLAIMABLE_KIB = 36 * MIB;
const KERNEL_RECLAIMABLE_KIB = 16 * MIB;
const MIN_FREE_KIB = 16 * MIB;
const BUFFERS_KIB = 4 * MIB;
/** Share of a resident shortfall that is touched (swapped in/refaulted) per second. */
const CHURN_PER_S = 0.25;
/** OOM relief: the killed program comes back with this time constant. */
const RESTART_TAU_S = 60;

export interface GuestCounters {
  stallSomeUs: number;
  stallFullUs: number;
  oomKills: number;
  swapOutKib: number;
  swapInKib: number;
  refaultKib: number;
}

export class SimGuest {
  // resident state
  private anonRes = 0;
  private swapped = 0;
  private cacheRes = 0;
  private coldRes = 0;
  private relief = 0; // anon demand removed by OOM kills, recovering
  private readonly psi = { s10: 0, s60: 0, s300: 0, f10: 0, f60: 0, f300: 0 };
  readonly counters: GuestCounters = { stallSomeUs: 0, stallFullUs: 0, oomKills: 0, swapOutKib: 0, swapInKib: 0, refaultKib: 0 };
  private lastDemand: Demand = { anonKib: 0, cacheWsKib: 0, commitKib: 0 };
  private totalKib = 0;
  private stallSome = 0;

  constructor(readonly params: GuestParams) {}

  /** The memory this guest needs not to stall: its working set plus kernel, reserve and gap. */
  needKib(): number {
    const d = this.lastDemand;
    return Math.max(0, d.anonKib - this.relief) + d.cacheWsKib + this.overheadKib();
  }

  overheadKib(): number {
    return this.params.gapKib + KERNEL_UNRECLAIMABLE_KIB + KERNEL_RECLAIMABLE_KIB + BUFFERS_KIB + MIN_FREE_KIB;
  }

  /** Current some-stall fraction (0..1), for tests and the live view. */
  stallFraction(): number {
    return this.stallSome;
  }

  step(allocKib: number, demand: Demand, dtS: number): void {
    this.lastDemand = demand;
    this.relief *= Math.exp(-dtS / RESTART_TAU_S);
    const total = Math.max(0, allocKib - this.params.gapKib);
    this.totalKib = total;
    const room = Math.max(0, total - KERNEL_UNRECLAIMABLE_KIB - KERNEL_RECLAIMABLE_KIB - BUFFERS_KIB - MIN_FREE_KIB);

    let anon = Math.max(0, demand.anonKib - this.relief);
    if (anon - room > this.params.swapKib) {
      // Out of memory and swap: the OOM killer frees the excess and a margin.
      this.counters.oomKills++;
      const excess = anon - room - this.params.swapKib;
      this.relief += excess + 0.1 * anon;
      anon = Math.max(0, demand.anonKib - this.relief);
    }
    const anonRes = Math.min(anon, room);
    const swapped = Math.min(this.params.swapKib, anon - anonRes);
    // Swap traffic: pages pushed out, and pages read back as memory returns or as the
    // program touches its swapped part.
    const touchedSwapped = swapped * CHURN_PER_S * dtS;
    if (swapped > this.swapped) this.counters.swapOutKib += swapped - this.swapped;
    else this.counters.swapInKib += this.swapped - swapped;
    this.counters.swapInKib += touchedSwapped;
    this.counters.swapOutKib += touchedSwapped;
    this.anonRes = anonRes;
    this.swapped = swapped;

    const cacheRoom = room - anonRes;
    this.cacheRes = Math.min(cacheRoom, demand.cacheWsKib);
    const cacheShort = demand.cacheWsKib - this.cacheRes;
    this.counters.refaultKib += cacheShort * CHURN_PER_S * dtS;
    // Cold file data fills what is left over time, and is dropped first under pressure.
    const coldRoom = cacheRoom - this.cacheRes;
    this.coldRes = Math.min(coldRoom, this.params.coldCacheKib, this.coldRes + 32 * MIB * dtS);

    const ws = anon + demand.cacheWsKib;
    const short = swapped + cacheShort;
    const shortRatio = ws > 0 ? short / ws : 0;
    const some = Math.min(1, 3 * shortRatio);
    const full = shortRatio > 0.1 ? Math.min(1, 2 * (shortRatio - 0.1)) : 0;
    this.stallSome = some;
    this.counters.stallSomeUs += some * dtS * 1e6;
    this.counters.stallFullUs += full * dtS * 1e6;
    for (const [w, key] of [[10, '10'], [60, '60'], [300, '300']] as const) {
      const e = Math.exp(-dtS / w);
      this.psi[`s${key}`] = this.psi[`s${key}`] * e + some * 100 * (1 - e);
      this.psi[`f${key}`] = this.psi[`f${key}`] * e + full * 100 * (1 - e);
    }
  }

  /** The report the xmem agent would publish now (meminfo, vmstat, PSI, balloon view). */
  report(seq: number, uptimeMs: number, balloon: { curKib: number; tgtKib: number | null }): GuestReport {
    const srec = KERNEL_RECLAIMABLE_KIB;
    const cache = Math.round(this.cacheRes + this.coldRes);
    const used = KERNEL_UNRECLAIMABLE_KIB + srec + BUFFERS_KIB + this.anonRes + cache;
    const free = Math.max(0, Math.round(this.totalKib - used));
    const psi: Psi = {
      s10: round2(this.psi.s10), s60: round2(this.psi.s60), s300: round2(this.psi.s300),
      stot: Math.round(this.counters.stallSomeUs),
      f10: round2(this.psi.f10), f60: round2(this.psi.f60), f300: round2(this.psi.f300),
      ftot: Math.round(this.counters.stallFullUs),
    };
    const page = (kib: number) => Math.round(kib / 4);
    return {
      v: 1,
      seq,
      up: Math.round(uptimeMs),
      total: Math.round(this.totalKib),
      free,
      avail: Math.max(0, Math.round(free + this.coldRes + 0.5 * this.cacheRes + srec / 2)),
      buf: BUFFERS_KIB,
      cache,
      afile: Math.round(this.cacheRes),
      ifile: Math.round(this.coldRes),
      shmem: 2 * MIB,
      srec,
      sunrec: KERNEL_UNRECLAIMABLE_KIB,
      anon: Math.round(this.anonRes),
      mlock: 0,
      swtot: this.params.swapKib,
      swfree: Math.max(0, Math.round(this.params.swapKib - this.swapped)),
      commit: Math.round(Math.max(0, this.lastDemand.commitKib - this.relief) + KERNEL_UNRECLAIMABLE_KIB),
      bcur: Math.round(balloon.curKib),
      btgt: balloon.tgtKib === null ? null : Math.round(balloon.tgtKib),
      psi,
      rfa: 0,
      rff: page(this.counters.refaultKib),
      swin: page(this.counters.swapInKib),
      swout: page(this.counters.swapOutKib),
    };
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
