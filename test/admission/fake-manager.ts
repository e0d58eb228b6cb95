import type { HostSnapshot, Reservation, VmDecision } from '../../src/policy/types.js';
import type { ManagerPort } from '../../dom0/admission/admission.js';
import { decision, MiB, vmSnapshot, type VmSpec } from './helpers.js';

/**
 * A stand-in for the Manager in unit tests of the admission logic (the integration tests use
 * the real Manager on the real xenstored). Each requested pass applies a crude policy: when free
 * memory is below reserve + reservations, lower squeezable VMs toward their floors in proportion
 * to their surplus; balloons move at most `kibPerPass` (0 = stuck) per pass.
 */
export class FakeManager implements ManagerPort {
  passes = 0;
  snapshot: HostSnapshot | null;
  readonly specs: (VmSpec & { kibPerPass?: number; target?: number })[];

  constructor(
    vms: (VmSpec & { kibPerPass?: number })[],
    public freeKib: number,
    public reservations: () => Reservation[],
    public reserveKib = 64 * MiB,
    /** set-mem pins (the real manager gets them through withAdmissionPins). */
    public pins: () => ReadonlyMap<number, number> = () => new Map(),
    /** The clock admission uses: snapshots carry its time, as the real manager's do. */
    public now: () => number = () => 0,
  ) {
    this.specs = vms.map((v) => ({ ...v }));
    this.snapshot = this.build();
  }

  /** holdGrowth and its release, in order ("hold new", "release new"); tests may add their own. */
  readonly holdLog: string[] = [];

  holdGrowth(forName: string): () => void {
    this.holdLog.push(`hold ${forName}`);
    return () => this.holdLog.push(`release ${forName}`);
  }

  lastSnapshot(): HostSnapshot | null {
    return this.snapshot;
  }

  lastDecisions(): VmDecision[] {
    return this.specs.map(decision);
  }

  requestPass(): void {
    this.passes++;
    const want = this.reserveKib + this.reservations().reduce((s, r) => s + r.kib, 0) - this.freeKib;
    const donors = this.specs.filter((v) => (v.managed ?? true) && !v.paused && !v.stuck && v.actualKib > v.floorKib);
    const surplus = donors.reduce((s, v) => s + (v.actualKib - v.floorKib), 0);
    const pins = this.pins();
    for (const v of this.specs) {
      const pin = pins.get(v.domid);
      if (pin === undefined) continue;
      v.target = pin;
      const step = Math.min(v.kibPerPass ?? Infinity, Math.max(0, v.actualKib - pin));
      v.actualKib -= step;
      this.freeKib += step;
    }
    for (const v of donors) {
      if (pins.has(v.domid)) continue;
      if (want > 0) v.target = Math.max(v.floorKib, v.actualKib - Math.ceil((want * (v.actualKib - v.floorKib)) / surplus));
      const step = Math.min(v.kibPerPass ?? Infinity, Math.max(0, v.actualKib - (v.target ?? v.actualKib)));
      v.actualKib -= step;
      this.freeKib += step;
    }
    this.snapshot = this.build();
  }

  private build(): HostSnapshot {
    return { nowMs: this.now(), totalKib: 64 * 1024 * MiB, freeKib: this.freeKib, reservations: this.reservations(), vms: this.specs.map((v) => ({ ...vmSnapshot(v), targetKib: v.target ?? v.actualKib })) };
  }

  /** A new domain appears (the VM being started takes its memory). */
  startDomain(v: VmSpec): void {
    this.specs.push({ ...v, managed: false });
    this.freeKib -= v.actualKib;
    this.snapshot = this.build();
  }
}
