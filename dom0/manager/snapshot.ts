import type { GuestSignal, HostSnapshot, Reservation, VmHistory, VmOverride, VmSnapshot } from '../../src/policy/types.js';
import { EMPTY_HISTORY } from '../../src/policy/types.js';
import type { HostFacts } from '../host/host.js';

/** What the manager knows about one domain beyond the host's facts. */
export interface VmKnowledge {
  name: string;
  targetKib: number | null;
  /** The domain's ceiling (hotplug-max, else its original static-max); null: unknown. */
  staticMaxKib: number | null;
  signal: GuestSignal;
  stuck: boolean;
  history: VmHistory | undefined;
}

/** Builds the policy's input from the host's facts and the manager's per-VM knowledge. Pure. */
export function buildSnapshot(
  facts: HostFacts,
  known: Map<number, VmKnowledge>,
  overrides: (name: string) => VmOverride | null,
  reservations: Reservation[],
  nowMs: number,
): HostSnapshot {
  const vms: VmSnapshot[] = [];
  for (const f of facts.domains) {
    const k = known.get(f.domid);
    const name = k?.name ?? f.name;
    vms.push({
      domid: f.domid,
      name,
      actualKib: f.actualKib,
      targetKib: k?.targetKib ?? null,
      maxmemKib: f.maxmemKib,
      // Without a static-max (only dom0, per qmemman) the ceiling is the host itself.
      staticMaxKib: Math.max(k?.staticMaxKib ?? facts.totalKib, f.actualKib),
      paused: f.paused,
      dying: f.dying,
      stuck: k?.stuck ?? false,
      signal: k?.signal ?? { kind: 'none', why: 'not yet read' },
      override: overrides(name),
      history: k?.history ?? EMPTY_HISTORY,
    });
  }
  return { nowMs, totalKib: facts.totalKib, freeKib: facts.freeKib, reservations, vms };
}
