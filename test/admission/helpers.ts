import { EMPTY_HISTORY, type HostSnapshot, type VmDecision, type VmSnapshot } from '../../src/policy/types.js';

export const MiB = 1024;
export const GiB = 1024 * 1024;

export interface VmSpec {
  domid: number;
  name: string;
  actualKib: number;
  floorKib: number;
  managed?: boolean;
  paused?: boolean;
  dying?: boolean;
  stuck?: boolean;
}

export function vmSnapshot(v: VmSpec): VmSnapshot {
  return {
    domid: v.domid,
    name: v.name,
    actualKib: v.actualKib,
    targetKib: v.actualKib,
    maxmemKib: v.actualKib + MiB,
    staticMaxKib: v.actualKib * 2,
    paused: v.paused ?? false,
    dying: v.dying ?? false,
    stuck: v.stuck ?? false,
    signal: { kind: 'none', why: 'test' },
    override: null,
    history: EMPTY_HISTORY,
  };
}

export function decision(v: VmSpec): VmDecision {
  return {
    domid: v.domid,
    name: v.name,
    idealKib: v.actualKib,
    floorKib: v.floorKib,
    targetKib: v.actualKib,
    maxmemKib: v.actualKib + MiB,
    change: 'hold',
    reason: 'test',
    managed: v.managed ?? true,
  };
}

export function world(vms: VmSpec[], freeKib: number, totalKib = 64 * GiB): { snapshot: HostSnapshot; decisions: VmDecision[] } {
  return {
    snapshot: { nowMs: 0, totalKib, freeKib, reservations: [], vms: vms.map(vmSnapshot) },
    decisions: vms.map(decision),
  };
}
