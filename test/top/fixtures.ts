import { EventEmitter } from 'node:events';
import { STATE_VERSION, type DecisionLog, type HostState, type Refusal, type VmState } from '../../src/schemas/state.js';
import type { StateSource } from '../../dom0/state/source.js';

const MiB = 1024;

export function vm(over: Partial<VmState> & Pick<VmState, 'domid' | 'name'>): VmState {
  return {
    actualKib: 1024 * MiB,
    targetKib: 1024 * MiB,
    idealKib: 1024 * MiB,
    floorKib: 400 * MiB,
    maxmemKib: 4096 * MiB,
    psiSome10: 0,
    psiFull10: 0,
    reportAgeMs: 1000,
    signal: 'xmem',
    flags: [],
    reason: 'steady',
    reasonAtMs: null,
    ...over,
  };
}

/** A host with four VMs whose orders by memory, pressure and name all differ. */
export function hostState(over: Partial<HostState> = {}): HostState {
  const at = over.atMs ?? Date.UTC(2026, 0, 1, 12, 0, 0);
  return {
    v: STATE_VERSION,
    type: 'snapshot',
    atMs: at,
    policy: 'xmem',
    host: { totalKib: 16384 * MiB, freeKib: 3000 * MiB, reservedKib: 0, summary: '4 VMs, 1 under pressure, 1 stuck' },
    vms: [
      vm({ domid: 0, name: 'dom0', actualKib: 4096 * MiB, targetKib: 4096 * MiB, idealKib: 3500 * MiB, floorKib: 1024 * MiB, psiSome10: 1.5, psiFull10: 0.2, flags: ['dom0'], reason: 'dom0 keeps its share' }),
      vm({ domid: 3, name: 'work', actualKib: 2048 * MiB, targetKib: 2500 * MiB, idealKib: 2600 * MiB, psiSome10: 22.5, psiFull10: 4.25, flags: ['pressure'], reason: 'grow: psi some 22.5% above 10%', reasonAtMs: at - 3000 }),
      vm({ domid: 5, name: 'browser', actualKib: 3000 * MiB, targetKib: 1500 * MiB, idealKib: 1400 * MiB, psiSome10: 5, psiFull10: 1, flags: ['stuck'], reason: 'stuck: balloon did not move in 30s', reasonAtMs: at - 40000 }),
      vm({ domid: 7, name: 'anon', actualKib: 800 * MiB, targetKib: null, idealKib: null, floorKib: null, psiSome10: null, psiFull10: null, reportAgeMs: null, signal: 'none', flags: ['no-agent'], reason: 'no agent: held at start size' }),
    ],
    reservations: [],
    refusals: [],
    decisions: [
      { atMs: at - 60000, domid: 3, name: 'work', fromKib: 1800 * MiB, toKib: 2048 * MiB, reason: 'grow: psi some 12% above 10%' },
      { atMs: at - 3000, domid: 3, name: 'work', fromKib: 2048 * MiB, toKib: 2500 * MiB, reason: 'grow: psi some 22.5% above 10%' },
      { atMs: at - 40000, domid: 5, name: 'browser', fromKib: 3000 * MiB, toKib: 1500 * MiB, reason: 'shrink: idle, ideal 1400M' },
    ],
    ...over,
  };
}

/** Stands in for the Manager: the server's peer is our own code, so a double is the honest test. */
export class FakeSource extends EventEmitter implements StateSource {
  /** How often the state was pulled (the server should only build it for a viewer or a scrape). */
  pulls = 0;
  constructor(private state: HostState) {
    super();
  }
  current(): HostState {
    this.pulls++;
    return this.state;
  }
  push(state: HostState): void {
    this.state = state;
    this.emit('change');
  }
  decide(d: DecisionLog): void {
    this.emit('decision', d);
  }
  refuse(r: Refusal): void {
    this.emit('refusal', r);
  }
}
