import { EventEmitter } from 'node:events';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import { MIB } from '../../src/units.js';
import type { DomainFacts, HostFacts, XenHost } from '../host/host.js';
import { balloonAttempt } from './balloon.js';
import type { BalloonSpec } from './scenario.js';

/**
 * The simulated hypervisor: host memory, domains and their fake balloon drivers. It implements
 * the same XenHost port as real Xen (facts + setMaxmem); targets reach the balloons the way
 * they reach a real guest's driver, through a watch on memory/target in the xenstore.
 *
 * It enforces what Xen enforces (a domain never exceeds its maxmem; nothing is allocated that
 * is not free) and records, rather than hides, every breach of the balancer's invariants
 * (squeezed's simulator checks): a target above maxmem, maxmem set below the target, a balloon
 * trying to allocate more than is free, reserved memory handed to a growing VM.
 */

export type ViolationKind = 'target-above-maxmem' | 'maxmem-below-target' | 'alloc-beyond-free' | 'reservation-handed-out' | 'below-floor';

export interface Violation {
  atMs: number;
  kind: ViolationKind;
  domid: number;
  detail: string;
}

export interface SimDomain {
  domid: number;
  name: string;
  actualKib: number;
  maxmemKib: number;
  staticMaxKib: number;
  /** memory/target as the guest's balloon driver last read it. */
  targetKib: number | null;
  paused: boolean;
  dying: boolean;
  balloon: BalloonSpec;
  hardFloorKib: number;
  /** Stops its watch (and closes its connection) at destroy. */
  detach: () => Promise<void>;
}

export interface CreateDomain {
  domid: number;
  name: string;
  memoryKib: number;
  staticMaxKib: number;
  balloon: BalloonSpec;
  hardFloorKib: number;
}

export interface SimHostOptions {
  totalKib: number;
  xenKib: number;
  /** The toolstack's connection (dom0, privileged). */
  xs: XenstoreClient;
  /** A connection acting as the guest (the embedded store); the dom0 one for a real daemon. */
  guestXs: (domid: number) => XenstoreClient;
  now: () => number;
  /** Reserved KiB right now (admission); growth must never eat into it. */
  reservedKib: () => number;
}

const MAX_VIOLATIONS_KEPT = 200;

export class SimHost extends EventEmitter implements XenHost {
  readonly domains = new Map<number, SimDomain>();
  readonly violations: Violation[] = [];
  readonly violationCounts: Record<ViolationKind, number> = {
    'target-above-maxmem': 0, 'maxmem-below-target': 0, 'alloc-beyond-free': 0, 'reservation-handed-out': 0, 'below-floor': 0,
  };

  constructor(private readonly o: SimHostOptions) {
    super();
  }

  /** The toolstack's (dom0) xenstore connection. */
  get xs(): XenstoreClient {
    return this.o.xs;
  }

  get totalKib(): number {
    return this.o.totalKib;
  }

  freeKib(): number {
    let used = this.o.xenKib;
    for (const d of this.domains.values()) used += d.actualKib;
    return Math.max(0, this.o.totalKib - used);
  }

  /** Memory promised to domains still growing toward their targets (within their maxmem). */
  promisedKib(): number {
    let sum = 0;
    for (const d of this.domains.values()) {
      if (d.targetKib === null || d.dying) continue;
      sum += Math.max(0, Math.min(d.targetKib, d.maxmemKib) - d.actualKib);
    }
    return sum;
  }

  violation(kind: ViolationKind, domid: number, detail: string): void {
    this.violationCounts[kind]++;
    if (this.violations.length < MAX_VIOLATIONS_KEPT) this.violations.push({ atMs: this.o.now(), kind, domid, detail });
    this.emit('violation', this.violations[this.violations.length - 1]);
  }

  // ---- XenHost ------------------------------------------------------------------------------

  async facts(): Promise<HostFacts> {
    const domains: DomainFacts[] = [...this.domains.values()].map((d) => ({
      domid: d.domid, name: d.name, actualKib: Math.round(d.actualKib), maxmemKib: d.maxmemKib, paused: d.paused, dying: d.dying,
    }));
    return { totalKib: this.o.totalKib, freeKib: Math.round(this.freeKib()), domains };
  }

  async setMaxmem(domid: number, kib: number): Promise<void> {
    const d = this.domains.get(domid);
    if (!d) throw new Error(`sim: no domain ${domid}`);
    // xenstore is the truth for the target (the balloon's copy may lag a watch event).
    const target = await this.readTarget(domid);
    if (target !== null && kib < target) this.violation('maxmem-below-target', domid, `maxmem ${kib} < target ${target} KiB`);
    d.maxmemKib = Math.round(kib);
  }

  // ---- domains ------------------------------------------------------------------------------

  /** Creates the domain as a toolstack does: allocation from free memory, xenstore nodes, introduce. */
  async create(c: CreateDomain): Promise<SimDomain> {
    if (c.memoryKib > this.freeKib()) throw new Error(`sim: ${c.name} needs ${c.memoryKib} KiB, ${Math.round(this.freeKib())} free`);
    const d: SimDomain = {
      domid: c.domid, name: c.name, actualKib: c.memoryKib,
      // Xen's ceiling starts at the creation size + 1 MiB (LIBXL_MAXMEM_CONSTANT), not maxmem=.
      maxmemKib: c.memoryKib + MIB, staticMaxKib: c.staticMaxKib,
      targetKib: c.memoryKib, paused: false, dying: false, balloon: c.balloon, hardFloorKib: c.hardFloorKib,
      detach: async () => {},
    };
    this.domains.set(c.domid, d);
    const xs = this.o.xs;
    const home = `/local/domain/${c.domid}`;
    if (c.domid !== 0) {
      await xs.mkdir(home);
      await xs.setPerms(home, [{ domid: 0, access: 'n' }, { domid: c.domid, access: 'r' }]);
    }
    await xs.write(`${home}/name`, c.domid === 0 ? 'Domain-0' : c.name);
    await xs.write(`${home}/domid`, String(c.domid));
    await xs.write(`${home}/memory/static-max`, String(c.staticMaxKib));
    await xs.write(`${home}/memory/target`, String(c.memoryKib));
    if (c.domid !== 0) {
      await xs.mkdir(`${home}/data`);
      await xs.setPerms(`${home}/data`, [{ domid: c.domid, access: 'n' }]);
    }
    // The guest's balloon driver watches its target, as drivers/xen/xen-balloon.c does.
    const guest = this.o.guestXs(c.domid);
    const unwatch = await guest.watch(`${home}/memory/target`, () => void this.onTarget(d, guest));
    d.detach = async () => {
      await unwatch().catch(() => {});
      if (guest !== xs) await guest.close();
    };
    // mfn/port are meaningless without a hypervisor; the peer shim accepts these.
    if (c.domid !== 0) await xs.introduce(c.domid, 1, 7);
    return d;
  }

  async destroy(domid: number): Promise<void> {
    const d = this.domains.get(domid);
    if (!d) return;
    this.domains.delete(domid);
    await d.detach();
    await this.o.xs.rm(`/local/domain/${domid}`);
    await this.o.xs.release(domid).catch(() => {});
  }

  private async readTarget(domid: number): Promise<number | null> {
    const v = await this.o.xs.tryRead(`/local/domain/${domid}/memory/target`);
    return v !== null && /^[0-9]{1,15}$/.test(v) ? Number(v) : null;
  }

  private async onTarget(d: SimDomain, guest: XenstoreClient): Promise<void> {
    const v = await guest.tryRead(`/local/domain/${d.domid}/memory/target`).catch(() => null);
    if (v === null || !/^[0-9]{1,15}$/.test(v) || !this.domains.has(d.domid)) return;
    const kib = Number(v);
    if (kib === d.targetKib) return;
    if (kib > d.maxmemKib) this.violation('target-above-maxmem', d.domid, `target ${kib} > maxmem ${d.maxmemKib} KiB`);
    const before = d.targetKib;
    d.targetKib = kib;
    this.emit('target', { domid: d.domid, kib, beforeKib: before, actualKib: d.actualKib });
  }

  // ---- time ---------------------------------------------------------------------------------

  /** Moves every balloon one step: shrinks first (they free memory), then grows in domid order. */
  moveBalloons(nowMs: number, dtS: number): void {
    const moves: { d: SimDomain; kib: number }[] = [];
    for (const d of this.domains.values()) {
      if (d.paused || d.dying) continue;
      const kib = balloonAttempt(d.balloon, { actualKib: d.actualKib, targetKib: d.targetKib, hardFloorKib: d.hardFloorKib }, nowMs, dtS);
      if (kib !== 0) moves.push({ d, kib });
    }
    for (const { d, kib } of moves) if (kib < 0) d.actualKib += kib;
    const reserved = this.o.reservedKib();
    for (const { d, kib } of moves.filter((m) => m.kib > 0).sort((a, b) => a.d.domid - b.d.domid)) {
      // Xen refuses pages beyond max_pages: the driver stalls there (xen-lab §6.1).
      const wanted = Math.min(kib, d.maxmemKib - d.actualKib);
      if (wanted <= 0) continue;
      const free = this.freeKib();
      if (wanted > free + 1) this.violation('alloc-beyond-free', d.domid, `tried to allocate ${Math.round(wanted)} KiB with ${Math.round(free)} free`);
      const got = Math.min(wanted, free);
      // Sub-MiB residue of a balloon converging on an older target is rounding, not a hand-out.
      if (reserved > 0 && got >= 1024 && this.freeKib() - got < reserved) {
        this.violation('reservation-handed-out', d.domid, `growth by ${Math.round(got)} KiB leaves ${Math.round(this.freeKib() - got)} free < ${reserved} reserved`);
      }
      d.actualKib += got;
    }
  }
}
