import type { VmState } from '../../src/schemas/state.js';

export type SortKey = 'memory' | 'pressure' | 'name';

const byDomid = (a: VmState, b: VmState): number => a.domid - b.domid;

const COMPARE: Record<SortKey, (a: VmState, b: VmState) => number> = {
  // Largest first, as top sorts by %MEM.
  memory: (a, b) => b.actualKib - a.actualKib || byDomid(a, b),
  // Most stalled first; VMs without an agent (no PSI) sink to the bottom.
  pressure: (a, b) =>
    (b.psiSome10 ?? -1) - (a.psiSome10 ?? -1) || (b.psiFull10 ?? -1) - (a.psiFull10 ?? -1) || b.actualKib - a.actualKib || byDomid(a, b),
  name: (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : byDomid(a, b)),
};

export function sortVms(vms: readonly VmState[], key: SortKey): VmState[] {
  return [...vms].sort(COMPARE[key]);
}
