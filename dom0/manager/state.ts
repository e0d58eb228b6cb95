import type { HostSnapshot, VmDecision } from '../../src/policy/types.js';
import { STATE_VERSION, type DecisionLog, type HostState, type VmFlag, type VmState } from '../../src/schemas/state.js';
import type { SignalStatus } from './signal.js';

/** Per-VM facts the state stream shows beyond the snapshot and the decisions. */
export interface VmView {
  status: SignalStatus;
  reason: string;
  reasonAtMs: number | null;
  pinned: boolean;
  /** The target in force now (the snapshot's is from before this pass applied its changes). */
  targetKib: number | null;
}

export interface StateInput {
  atMs: number;
  policy: string;
  summary: string;
  snapshot: HostSnapshot | null;
  decisions: Map<number, VmDecision>;
  views: Map<number, VmView>;
  decisionLog: DecisionLog[];
  reservationSince: (id: string) => number;
  /** Monotonic ms → wall-clock ms, for reasonAtMs and the decision log. */
  toWallMs: (monoMs: number) => number;
}

/** Builds the `xmem top` / `xmem status` snapshot (src/schemas/state.ts). Pure. */
export function buildHostState(s: StateInput): HostState {
  const snap = s.snapshot;
  const reservedKib = snap ? snap.reservations.reduce((sum, r) => sum + r.kib, 0) : 0;
  const vms: VmState[] = (snap?.vms ?? []).map((vm) => {
    const d = s.decisions.get(vm.domid);
    const view = s.views.get(vm.domid);
    const sig = vm.signal;
    const psi = sig.kind === 'xmem' ? sig.report.psi : null;
    const flags: VmFlag[] = [];
    if (vm.domid === 0) flags.push('dom0');
    if (vm.stuck) flags.push('stuck');
    if (vm.paused) flags.push('paused');
    if (vm.dying) flags.push('dying');
    if (view?.status === 'missing') flags.push('no-agent');
    if (view?.status === 'bad') flags.push('bad-report');
    if (view?.status === 'stale') flags.push('stale');
    if (view?.pinned) flags.push('pinned');
    if (psi && psi.s10 > 0) flags.push('pressure');
    return {
      domid: vm.domid,
      name: vm.name,
      actualKib: vm.actualKib,
      targetKib: view ? view.targetKib : vm.targetKib,
      idealKib: d?.idealKib ?? null,
      floorKib: d?.floorKib ?? null,
      maxmemKib: vm.maxmemKib,
      psiSome10: psi?.s10 ?? null,
      psiFull10: psi?.f10 ?? null,
      reportAgeMs: sig.kind === 'none' ? null : Math.round(sig.ageMs),
      signal: sig.kind,
      flags,
      reason: view?.reason || d?.reason || '',
      reasonAtMs: view?.reasonAtMs != null ? s.toWallMs(view.reasonAtMs) : null,
    };
  });
  return {
    v: STATE_VERSION,
    type: 'snapshot',
    atMs: s.toWallMs(s.atMs),
    policy: s.policy,
    host: {
      totalKib: snap?.totalKib ?? 0,
      freeKib: snap?.freeKib ?? 0,
      reservedKib,
      summary: s.summary,
    },
    vms,
    reservations: (snap?.reservations ?? []).map((r) => ({
      id: r.id,
      forName: r.forName,
      kib: r.kib,
      sinceMs: s.toWallMs(s.reservationSince(r.id)),
      // The manager cannot tell "squeezing" from "held" alone; admission owns that detail.
      state: 'held' as const,
    })),
    refusals: [],
    decisions: s.decisionLog,
  };
}
