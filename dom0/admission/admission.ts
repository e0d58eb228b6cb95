import type { Clock } from '../../src/clock.js';
import type { HostSnapshot, VmDecision } from '../../src/policy/types.js';
import type { ReservationBook, LiveReservation } from './book.js';
import { Mutex } from './mutex.js';
import { growingKib, planAdmission, type AdmissionPlan, type Donor, type Refusal } from './plan.js';
import { QMEMMAN_RATE, type RateRule } from './rate.js';
import { waitForFree } from './squeeze.js';
import { fmtSize, planSentence, refusalSentence } from './words.js';

/**
 * VM-start admission: plan, reserve, squeeze, answer. One request at a time (FIFO), so two
 * starts never count the same free memory. Refusals below the floors are immediate; a squeeze
 * that stalls fails within qmemman's 3 s rate window and names the VMs that did not move.
 */

/** What admission needs from the Manager (dom0/manager/manager.ts satisfies it as is). */
export interface ManagerPort {
  lastSnapshot(): HostSnapshot | null;
  lastDecisions(): VmDecision[];
  requestPass(): void;
  /** Flags a VM stuck now (excluded until it moves), ahead of the manager's own timeout. */
  markStuck?(domid: number, why: string): void;
  /**
   * qmemman's lock on arrival: until the returned function is called, no VM grows (those
   * growing are held at their allocation), so the memory a start is planned on stays free.
   */
  holdGrowth?(forName: string): () => void;
}

export interface AdmissionLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface AdmissionOptions {
  clock: Clock;
  logger?: AdmissionLogger;
  /** Xen memory never handed out, as the policy keeps it (service.xenFreeReserveKib). */
  reserveKib: number;
  /** The squeeze succeeds once free ≥ request + this (qmemman: XEN_FREE_MEM_MIN = 25 MiB). */
  marginKib?: number;
  rule?: RateRule;
  pollMs?: number;
  /** A donor that freed less than this over the rate window "did not move". */
  movedKib?: number;
  /** Upper bound on one squeeze, whatever the rate. */
  squeezeMaxMs?: number;
  /** Wait this long for a pass after the request (fresh facts) before refusing as "not ready". */
  readyWaitMs?: number;
  /** Wall-clock ms for refusal records (tests pin it). */
  wallNow?: () => number;
}

export type RefusalKind = 'below-floors' | 'stalled' | 'not-ready' | 'cancelled' | 'invalid';

export type Decision =
  | {
      ok: true;
      id: string;
      forName: string;
      kib: number;
      how: 'fits-now' | 'squeezed';
      waitedMs: number;
      freeKib: number;
      /** Expected contributions (the policy does the actual squeezing). */
      donors: { name: string; giveKib: number }[];
      expiresAtMs: number;
      message: string;
    }
  | {
      ok: false;
      forName: string;
      kib: number;
      kind: RefusalKind;
      message: string;
      refusal?: Refusal;
      stuck?: string[];
    };

export interface ReserveRequest {
  forName: string;
  kib: number;
  /** Override of the book's hold timeout for this reservation. */
  timeoutMs?: number;
  /** True once the client is gone: a queued or squeezing request is dropped. */
  cancelled?: () => boolean;
  /** No VM name (qmemman.sock): any domain created meanwhile takes the reservation over. */
  anyNewDomain?: boolean;
}

export class Admission {
  readonly mutex = new Mutex();
  private readonly o: Required<Omit<AdmissionOptions, 'logger'>> & { logger: AdmissionLogger | undefined };

  constructor(private readonly manager: ManagerPort, readonly book: ReservationBook, opts: AdmissionOptions) {
    this.o = {
      marginKib: 25 * 1024,
      rule: QMEMMAN_RATE,
      pollMs: 100,
      movedKib: 1024,
      squeezeMaxMs: 60_000,
      readyWaitMs: 5000,
      wallNow: Date.now,
      ...opts,
      logger: opts.logger,
    };
  }

  /** Serialized reserve: waits its turn, then plans, reserves and squeezes. */
  async reserve(req: ReserveRequest): Promise<Decision> {
    const unlock = await this.mutex.acquire();
    try {
      return await this.reserveLocked(req);
    } finally {
      unlock();
    }
  }

  /**
   * The body of `reserve` for a caller that already holds `mutex` (qmemman.sock keeps it).
   * From its turn until it is answered, growth is held (VMs growing are stopped where they
   * are): grows decided before the request would otherwise take the free memory it is planned
   * on and the memory donors free. Once it is answered, the reservation itself (which the
   * policy and the applier's gate count as used) protects the memory, and growth beyond it
   * goes on as usual.
   */
  async reserveLocked(req: ReserveRequest): Promise<Decision> {
    if (req.cancelled?.()) return this.refuse(req, 'cancelled', 'cancelled: the client went away before its turn');
    const unhold = this.manager.holdGrowth?.(req.forName) ?? (() => {});
    try {
      return await this.admit(req);
    } finally {
      unhold();
    }
  }

  private async admit(req: ReserveRequest): Promise<Decision> {
    const { clock } = this.o;
    const kib = Math.ceil(req.kib);
    // Plan on facts read after the request arrived: a VM started behind xmem's back since the
    // last pass must not make a stale "fits now" true.
    const snap = await this.fresh(clock.now());
    if (!snap) return this.refuse(req, 'not-ready', `xmem could not read the host within ${this.o.readyWaitMs / 1000} s; try again shortly`);

    const others = this.book.list();
    const plan = this.plan(snap, kib, req.forName, others);
    if (plan.kind === 'refused') {
      return this.refuse(req, 'below-floors', refusalSentence(plan.refusal, req.forName), { refusal: plan.refusal });
    }

    const r = this.book.add(req.forName, kib, 'squeezing', req.timeoutMs, req.anyNewDomain === true);
    this.manager.requestPass();
    const t0 = clock.now();
    const result = await waitForFree(
      { clock, snapshot: () => this.manager.lastSnapshot(), requestPass: () => this.manager.requestPass() },
      {
        // Growth still in flight (a VM the hold could not stop) will take free memory too.
        freeKib: () => kib + this.o.marginKib + this.owedByOthers(r.id) + this.growing(),
        donors: plan.kind === 'squeeze' ? plan.donors.filter((d) => d.giveKib > 0) : [],
        rule: this.o.rule,
        pollMs: this.o.pollMs,
        movedKib: this.o.movedKib,
        maxMs: Math.min(this.o.squeezeMaxMs, r.expiresAtMs - t0),
        cancelled: () => req.cancelled?.() === true || this.book.get(r.id) === undefined,
        exclude: (stalled, shortKib) => this.excludeStalled(plan.kind === 'squeeze' ? plan.donors : [], stalled, shortKib, req.forName),
      },
    );
    if (!result.ok) {
      this.book.release(r.id);
      const kind: RefusalKind = result.why.startsWith('cancelled') ? 'cancelled' : 'stalled';
      return this.refuse(req, kind, `cannot reserve ${fmtSize(kib)} for ${req.forName}: ${result.why}`, { stuck: result.stuck });
    }
    this.book.markHeld(r.id);
    const decision: Decision = {
      ok: true,
      id: r.id,
      forName: req.forName,
      kib,
      how: plan.kind === 'fits-now' ? 'fits-now' : 'squeezed',
      waitedMs: Math.round(result.waitedMs),
      freeKib: result.freeKib,
      donors: plan.kind === 'squeeze' ? plan.donors.filter((d) => d.giveKib > 0).map((d) => ({ name: d.name, giveKib: d.giveKib })) : [],
      expiresAtMs: r.expiresAtMs,
      message: `reserved ${fmtSize(kib)} for ${req.forName}` + (plan.kind === 'squeeze' ? ` (${planSentence(plan, req.forName).replace(/^.* fits after /, 'after ')})` : ''),
    };
    this.o.logger?.info({ id: r.id, vm: req.forName, kib, how: decision.how, waitedMs: decision.waitedMs, freeKib: result.freeKib }, 'reservation held');
    return decision;
  }

  release(id: string, why = 'released by its client'): boolean {
    const r = this.book.get(id);
    const ok = this.book.release(id);
    if (ok && r) this.o.logger?.info({ id, vm: r.forName, kib: r.kib, why }, 'reservation released');
    if (ok) this.manager.requestPass();
    return ok;
  }

  /** The planner on the latest snapshot, with live reservations (what they still owe) counted. */
  plan(snap: HostSnapshot, kib: number, forName: string, others: LiveReservation[] = this.book.list()): AdmissionPlan {
    return planAdmission({
      snapshot: snap,
      decisions: this.manager.lastDecisions(),
      reservations: others.map((o) => ({ id: o.id, forName: o.forName, kib: this.book.owedKib(o, snap) })),
      reserveKib: this.o.reserveKib,
      neededKib: kib,
      forName,
    });
  }

  /**
   * Re-plans when donors stall above their targets (a hidden balloon limit): if the VMs still
   * moving hold enough above their floors to cover what is missing, the stalled ones are
   * flagged stuck at once (the rate window is shorter than the manager's stuck timeout) so
   * the policy takes more from the others; else the squeeze fails as before.
   */
  private excludeStalled(all: readonly Donor[], stalled: readonly Donor[], shortKib: number, forName: string): boolean {
    const markStuck = this.manager.markStuck?.bind(this.manager);
    const snap = this.manager.lastSnapshot();
    if (!markStuck || !snap) return false;
    const out = new Set(stalled.map((d) => d.domid));
    const vms = new Map(snap.vms.map((vm) => [vm.domid, vm]));
    const spare = all
      .filter((d) => !out.has(d.domid))
      .reduce((sum, d) => {
        const vm = vms.get(d.domid);
        return vm && !vm.stuck ? sum + Math.max(0, vm.actualKib - d.floorKib) : sum;
      }, 0);
    if (spare < shortKib) return false;
    for (const d of stalled) markStuck(d.domid, `stopped giving memory back while freeing memory for ${forName}`);
    this.o.logger?.info({ vm: forName, stalled: stalled.map((d) => d.name), shortKib, spareKib: spare }, 'squeeze re-planned without stalled donors');
    return true;
  }

  private growing(): number {
    const snap = this.manager.lastSnapshot();
    return snap ? growingKib(snap) : 0;
  }

  private owedByOthers(id: string): number {
    return this.book.list().filter((o) => o.id !== id).reduce((s, o) => s + this.book.owedKib(o), 0);
  }

  /** The first snapshot taken at or after `sinceMs` (the manager and admission share a clock). */
  private async fresh(sinceMs: number): Promise<HostSnapshot | null> {
    const deadline = sinceMs + this.o.readyWaitMs;
    this.manager.requestPass();
    for (;;) {
      const snap = this.manager.lastSnapshot();
      if (snap && snap.nowMs >= sinceMs) return snap;
      if (this.o.clock.now() >= deadline) return null;
      await this.o.clock.sleep(Math.min(this.o.pollMs, 20));
      this.manager.requestPass();
    }
  }

  private refuse(req: ReserveRequest, kind: RefusalKind, message: string, extra: { refusal?: Refusal; stuck?: string[] } = {}): Decision {
    const kib = Math.ceil(req.kib);
    if (kind !== 'cancelled') {
      this.book.refuse({ atMs: this.o.wallNow(), forName: req.forName, neededKib: kib, reason: message });
    }
    this.o.logger?.warn({ vm: req.forName, kib, kind, ...(extra.stuck?.length ? { stuck: extra.stuck } : {}) }, message);
    return { ok: false, forName: req.forName, kib, kind, message, ...extra };
  }
}
