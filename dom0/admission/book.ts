import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../src/clock.js';
import type { HostSnapshot, Reservation } from '../../src/policy/types.js';
import type { Refusal as RefusalState } from '../../src/schemas/state.js';

/**
 * The reservation book: memory promised to VMs about to start. The manager's policy reads it
 * (`reservations`) and treats it as used, so balancing never hands it out. A reservation lives
 * until its client releases it, disconnects, or its timeout passes (so a client that hangs
 * cannot pin memory forever). Emits 'change' whenever the set changes (the owner asks for a pass) and
 * 'expire' (LiveReservation) when a timeout ends one.
 */

export interface LiveReservation {
  id: string;
  forName: string;
  kib: number;
  /** Clock ms (monotonic) when it was made. */
  sinceMs: number;
  expiresAtMs: number;
  state: 'squeezing' | 'held';
  /** Domains that already existed (with this name, or any for `anyNewDomain`): only a new
   *  one takes the reservation over. */
  preexisting: number[];
  /** The client did not say which VM (qmemman.sock): any domain created after it takes it over. */
  anyNewDomain: boolean;
}

export interface BookOptions {
  clock: Clock;
  /** Held reservations expire after this (qubesd keeps qmemman's socket open ~seconds). */
  timeoutMs: number;
  /** The manager's latest snapshot: a started VM's allocation counts against its reservation. */
  snapshot?: () => HostSnapshot | null;
  /** How many recent refusals to keep for `xmem top`. */
  refusalsKept?: number;
  onExpire?: (r: LiveReservation) => void;
}

export class ReservationBook extends EventEmitter {
  private readonly live = new Map<string, { r: LiveReservation; cancel: () => void }>();
  private readonly refusalLog: RefusalState[] = [];
  private readonly pinned = new Map<number, { kib: number; owner: string }>();
  /** Set once the manager's policy runs through `withAdmissionPins` (set-mem needs it). */
  pinsWired = false;

  private snapshotOf: () => HostSnapshot | null;

  constructor(private readonly opts: BookOptions) {
    super();
    this.snapshotOf = opts.snapshot ?? (() => null);
  }

  /** The manager is built with this book's `reservations`, so its snapshots arrive afterwards. */
  attach(snapshot: () => HostSnapshot | null): void {
    this.snapshotOf = snapshot;
  }

  add(
    forName: string,
    kib: number,
    state: LiveReservation['state'],
    timeoutMs = this.opts.timeoutMs,
    anyNewDomain = false,
  ): LiveReservation {
    const now = this.opts.clock.now();
    const snap = this.snapshotOf();
    const r: LiveReservation = {
      id: `r-${randomBytes(6).toString('hex')}`,
      forName,
      kib,
      sinceMs: now,
      expiresAtMs: now + timeoutMs,
      state,
      preexisting: (snap?.vms ?? []).filter((vm) => anyNewDomain || vm.name === forName).map((vm) => vm.domid),
      anyNewDomain,
    };
    const cancel = this.opts.clock.setTimer(timeoutMs, () => {
      if (!this.live.has(r.id)) return;
      this.release(r.id);
      this.emit('expire', r);
      this.opts.onExpire?.(r);
    });
    this.live.set(r.id, { r, cancel });
    this.emit('change');
    return r;
  }

  markHeld(id: string): void {
    const e = this.live.get(id);
    if (e && e.r.state !== 'held') {
      e.r.state = 'held';
      this.emit('change');
    }
  }

  release(id: string): boolean {
    const e = this.live.get(id);
    if (!e) return false;
    e.cancel();
    this.live.delete(id);
    this.emit('change');
    return true;
  }

  get(id: string): LiveReservation | undefined {
    return this.live.get(id)?.r;
  }

  list(): LiveReservation[] {
    return [...this.live.values()].map((e) => e.r);
  }

  /**
   * What each reservation still holds back: once its VM exists (a domain with its name that was
   * not there when it was made), the VM's own allocation counts against it, so the memory is
   * not counted twice between domain creation and the client's release (squeezed's in-transfer).
   * qmemman.sock clients name no VM; their lock keeps them alone, so any new domain is theirs.
   */
  owedKib(r: LiveReservation, snap: HostSnapshot | null = this.snapshotOf()): number {
    const taken = (snap?.vms ?? [])
      .filter((vm) => (r.anyNewDomain || vm.name === r.forName) && !r.preexisting.includes(vm.domid))
      .reduce((sum, vm) => sum + vm.actualKib, 0);
    return Math.max(0, r.kib - taken);
  }

  /** The Manager's `reservations` dependency: bind-free, so it can be passed as is. */
  readonly reservations = (): Reservation[] => {
    const snap = this.snapshotOf();
    return this.list().map((r) => ({ id: r.id, forName: r.forName, kib: this.owedKib(r, snap) }));
  };

  /**
   * qmemman's set-mem: the policy holds this domain at `kib` (as a config pin would) until the
   * owner unpins it; the manager itself writes the target, so nothing fights over it.
   */
  pin(domid: number, kib: number, owner: string): void {
    this.pinned.set(domid, { kib, owner });
    this.emit('change');
  }

  unpin(owner: string): void {
    let changed = false;
    for (const [domid, p] of this.pinned) {
      if (p.owner === owner) {
        this.pinned.delete(domid);
        changed = true;
      }
    }
    if (changed) this.emit('change');
  }

  pins(): ReadonlyMap<number, number> {
    return new Map([...this.pinned].map(([domid, p]) => [domid, p.kib]));
  }

  refuse(entry: RefusalState): void {
    this.refusalLog.push(entry);
    const keep = this.opts.refusalsKept ?? 20;
    while (this.refusalLog.length > keep) this.refusalLog.shift();
    this.emit('refusal', entry);
    this.emit('change');
  }

  refusals(): RefusalState[] {
    return [...this.refusalLog];
  }

  /** The default hold timeout (ms). */
  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  /** Drops everything (service stop). */
  clear(): void {
    for (const e of this.live.values()) e.cancel();
    this.live.clear();
    this.pinned.clear();
    this.emit('change');
  }
}
