import type { GuestReport } from '../schemas/report.js';

/**
 * The policy's whole world: a pure function maps a HostSnapshot (+ config) to decisions.
 * Nothing here touches Xen, xenstore, clocks or timers. All memory values are KiB of Xen
 * allocation (what `xl list` shows), not the guest's MemTotal: the ~60 MiB gap between the
 * two is accounted for inside the policy (see `gapKib`).
 */

/** What a guest told us, already validated. Missing/bad/stale input is `none` with a reason. */
export type GuestSignal =
  | { kind: 'xmem'; report: GuestReport; ageMs: number }
  | { kind: 'qubes'; usedKib: number; ageMs: number }
  /** `allocKib`: the VM's Xen allocation when these numbers arrived (null: unknown, the current
   *  one stands in). XAPI agents rewrite them every minute or so: measured against the current
   *  allocation, a stale MemTotal would read every grow as more gap, and the gap would grow
   *  the VM again (up to gapMax). */
  | { kind: 'xapi'; freeKib: number; totalKib: number; allocKib: number | null; ageMs: number }
  | { kind: 'none'; why: string };

/** Per-VM admin overrides from the config file (by VM name). */
export interface VmOverride {
  minKib?: number;
  maxKib?: number;
  weight?: number;
  /** Pinned VMs are never changed by xmem. */
  pinKib?: number;
}

/** Policy memory carried from one pass to the next (returned in the result, fed back in). */
export interface VmHistory {
  /** Last target xmem decided (Xen allocation KiB). */
  lastTargetKib: number | null;
  /** When the VM last grew because of pressure; shrink waits for PSI decay after this. */
  lastPressureMs: number | null;
  /** When the last shrink step was applied, to moderate shrink rate. */
  lastShrinkMs: number | null;
  /** Last seen PSI `some` total (µs), to detect fresh stalls between reports. */
  lastStallTotalUs: number | null;
  /** xmem policy: the VM's moderated demand (what it asks for before sharing), KiB. */
  wantKib?: number | null;
  /** xmem policy: how far senpai-style probing has taken the demand below the ideal, KiB. */
  probeKib?: number;
  /** xmem policy: when the last probe step was taken. */
  lastProbeMs?: number | null;
  /** xmem policy: the ideal a rise is measured from (follows every fall at once), KiB. */
  lastIdealKib?: number | null;
  /** xmem policy: when the ideal last rose by shrink.riseMin or more (no shrink step soon after). */
  lastRiseMs?: number | null;
}

export const EMPTY_HISTORY: VmHistory = {
  lastTargetKib: null,
  lastPressureMs: null,
  lastShrinkMs: null,
  lastStallTotalUs: null,
};

export interface VmSnapshot {
  domid: number;
  name: string;
  /** Xen's current allocation (tot_pages), KiB. */
  actualKib: number;
  /** The target currently in force (memory/target as last written), KiB; null if unknown. */
  targetKib: number | null;
  /** Xen's current max_pages ceiling (creation size + 1 MiB unless raised), KiB. */
  maxmemKib: number;
  /** The VM's configured maximum (memory/static-max); maxmem may be raised up to here. */
  staticMaxKib: number;
  paused: boolean;
  dying: boolean;
  /** Set by the applier when the VM made no progress toward its target for the stuck timeout. */
  stuck: boolean;
  signal: GuestSignal;
  override: VmOverride | null;
  history: VmHistory;
}

export interface Reservation {
  id: string;
  forName: string;
  kib: number;
}

export interface HostSnapshot {
  nowMs: number;
  /** Host physical memory, KiB. */
  totalKib: number;
  /** Xen free memory now, KiB. */
  freeKib: number;
  /** Live admission reservations: balancing must never hand this memory out. */
  reservations: Reservation[];
  /** Every domain including dom0 (domid 0). */
  vms: VmSnapshot[];
}

export type Change = 'grow' | 'shrink' | 'hold';

export interface VmDecision {
  domid: number;
  name: string;
  idealKib: number;
  floorKib: number;
  /** New target (Xen allocation KiB). Equals the current one for `hold`. */
  targetKib: number;
  /** maxmem to set with (before, for growth) the target. */
  maxmemKib: number;
  change: Change;
  /** One human sentence: why the target is what it is (logged, shown by `xmem top`). */
  reason: string;
  /** VMs the policy does not manage this pass (paused, dying, pinned, stuck, no signal…). */
  managed: boolean;
}

export interface PolicyResult {
  decisions: VmDecision[];
  /** Host-level summary: mode (enough / scarcity), available, surplus handling. */
  summary: string;
  /** History to feed into the next pass, by domid. */
  history: Record<number, VmHistory>;
}
