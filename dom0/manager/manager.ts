import { EventEmitter } from 'node:events';
import type pino from 'pino';
import type { Clock } from '../../src/clock.js';
import { decide as policyDecide } from '../../src/policy/index.js';
import type { HostSnapshot, PolicyResult, Reservation, VmDecision } from '../../src/policy/types.js';
import type { DecisionLog, HostState } from '../../src/schemas/state.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import type { XmemConfig } from '../config.js';
import type { DomainFacts, HostFacts, XenHost } from '../host/host.js';
import { applyPlan, type Applied } from './applier.js';
import { keys } from './keys.js';
import { ALL_GUEST_KEYS, readGuestKeys, readTarget, setupDomain, teardownDomain, type DomainRecord, type GuestKey } from './domain.js';
import { MAXMEM_SLACK_KIB, planApply } from './plan.js';
import { trackProgress } from './progress.js';
import { agedReading, readSignal } from './signal.js';
import { buildSnapshot, type VmKnowledge } from './snapshot.js';
import { buildHostState, type VmView } from './state.js';

/**
 * The balancing loop (the imperative shell around the pure policy).
 * Event-driven: guest report writes and domain introduce/release request a pass; a burst of
 * requests coalesces into one pass, passes start at least `minPassIntervalMs` apart; a slow
 * sweep re-reads everything (qmemman has none, so a quiet guest was never rebalanced); while a
 * VM converges toward its target a follow-up pass runs every `convergePollMs` (stuck detection).
 * Supervised: a pass that throws is logged and the loop goes on; a dead xenstore connection is
 * re-established and the state rebuilt from Xen + xenstore, as on a restart.
 */

export interface ManagerDeps {
  xs: XenstoreClient;
  host: XenHost;
  clock: Clock;
  config: XmemConfig;
  logger: pino.Logger;
  reservations?: () => Reservation[];
  /** Opens a fresh xenstore connection after the current one died (`xmem run` passes one). */
  reconnect?: () => Promise<XenstoreClient>;
  /** The policy; the real one unless a test needs to inject a failure. */
  decide?: (snapshot: HostSnapshot, config: XmemConfig['policy']) => PolicyResult;
}

export interface PassChange {
  domid: number;
  name: string;
  fromKib: number | null;
  toKib: number;
  phase: 'shrink' | 'grow';
  reason: string;
}

export interface PassReport {
  seq: number;
  atMs: number;
  durationMs: number;
  summary: string;
  changes: PassChange[];
  /** Changes the policy wanted but that were not made (paused, stuck, free memory short…). */
  held: { domid: number; name: string; why: string }[];
  error: string | null;
}

const DECISION_LOG_MAX = 100;

export class Manager extends EventEmitter {
  private xs: XenstoreClient;
  private readonly host: XenHost;
  private readonly clock: Clock;
  private readonly config: XmemConfig;
  private readonly log: pino.Logger;
  private readonly reservationsOf: () => Reservation[];
  private readonly decideFn: NonNullable<ManagerDeps['decide']>;
  private readonly reconnectFn: ManagerDeps['reconnect'];

  private readonly doms = new Map<number, DomainRecord>();
  private globalUnwatch: (() => Promise<void>)[] = [];
  private snapshot: HostSnapshot | null = null;
  private decisions: VmDecision[] = [];
  private summary = 'starting';
  private readonly decisionLog: DecisionLog[] = [];
  private readonly reservationSeen = new Map<string, number>();
  private passSeq = 0;
  /** VMs flagged stuck between passes (markStuck), clamped at the next pass. */
  private readonly clampPending = new Set<number>();
  /** Growth holds (holdGrowth): VM starts being admitted, by token; `holdsSeen`: those a pass
   *  or wait poll has acted on (an unseen one makes the next pass urgent). */
  private readonly growthHolds = new Map<number, string>();
  private readonly holdsSeen = new Set<number>();
  private holdSeq = 0;

  private started = false;
  private stopped = false;
  private running = false;
  private pending = false;
  private lastPassStartMs = -Infinity;
  private chain: Promise<unknown> = Promise.resolve();
  private cancelPassTimer: (() => void) | null = null;
  private cancelSweep: (() => void) | null = null;
  private cancelConverge: (() => void) | null = null;
  private xsBroken = false;
  /** Set when the connection came back: every domain is rebuilt from xenstore. */
  private rebuild = false;
  private readonly wallBase = Date.now();
  private readonly monoBase: number;

  constructor(deps: ManagerDeps) {
    super();
    this.xs = deps.xs;
    this.host = deps.host;
    this.clock = deps.clock;
    this.config = deps.config;
    this.log = deps.logger;
    this.reservationsOf = deps.reservations ?? (() => []);
    this.decideFn = deps.decide ?? policyDecide;
    this.reconnectFn = deps.reconnect;
    this.monoBase = this.clock.now();
    this.listenForClose(this.xs);
  }

  private get svc() {
    return this.config.service;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    await this.watchDomainList();
    this.scheduleSweep();
    this.log.info({ policy: this.config.policy.policy, sweepMs: this.svc.sweepIntervalMs }, 'manager started');
    this.requestPass();
  }

  /** Stops the loop and its watches. Targets stay where they are: a restart resumes from them. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelPassTimer?.();
    this.cancelSweep?.();
    this.cancelConverge?.();
    this.cancelPassTimer = this.cancelSweep = this.cancelConverge = null;
    await this.chain.catch(() => {});
    if (!this.xsBroken) {
      for (const u of this.globalUnwatch) await u().catch(() => {});
      for (const rec of this.doms.values()) await teardownDomain(rec);
    }
    this.globalUnwatch = [];
    this.doms.clear();
    this.started = false;
    this.log.info('manager stopped; targets left in place');
  }

  /** Asks for a pass soon; any number of requests while one is pending make one pass. */
  requestPass(): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    // A new growth hold or reservation is served at once: VMs still growing must be held before
    // their balloons take the free memory a start is planned on (admission asks for a pass).
    const urgent = this.growthHolds.size > this.holdsSeen.size || this.reservationsOf().some((r) => !this.reservationSeen.has(r.id));
    if (this.cancelPassTimer && !urgent) {
      this.pending = true;
      return;
    }
    this.cancelPassTimer?.();
    this.cancelPassTimer = null;
    const wait = urgent ? 0 : this.lastPassStartMs + this.svc.minPassIntervalMs - this.clock.now();
    if (wait <= 0) {
      void this.loopPass();
      return;
    }
    this.cancelPassTimer = this.clock.setTimer(wait, () => {
      this.cancelPassTimer = null;
      void this.loopPass();
    });
  }

  /** Runs one pass now (serialised with the loop's own passes) and reports it. */
  runPass(): Promise<PassReport> {
    const p = this.chain.then(() => this.pass());
    this.chain = p.catch(() => {});
    return p;
  }

  /**
   * Admission saw this VM stop giving memory back during a squeeze (its 3 s rate window is
   * shorter than stuckAfterMs): flag it stuck now, exactly as the timeout would (excluded,
   * clamped at the next pass, balanced again once it moves).
   */
  markStuck(domid: number, why: string): void {
    const rec = this.doms.get(domid);
    if (!rec || rec.stuck) return;
    const now = this.clock.now();
    const actualKib = this.snapshot?.vms.find((vm) => vm.domid === domid)?.actualKib ?? rec.targetKib ?? 0;
    rec.stuck = true;
    rec.progress = { targetKib: rec.targetKib ?? actualKib, lastActualKib: actualKib, lastProgressMs: now, stuck: true };
    rec.reason = `stuck: ${why}`;
    rec.reasonAtMs = now;
    this.clampPending.add(domid);
    this.log.warn({ vm: rec.name, domid, actualKib, targetKib: rec.targetKib, why }, 'VM stuck; excluded until it moves');
    this.requestPass();
  }

  /**
   * Admission: a VM start is being admitted (qmemman takes its global lock here). Until the
   * returned function is called, no VM grows: at once (an urgent pass, or the next poll of a
   * pass waiting for free memory) VMs still growing are held at their allocation, and every
   * grow the policy wants is deferred. Then growth goes through the policy and the gate again.
   */
  holdGrowth(forName: string): () => void {
    const token = ++this.holdSeq;
    this.growthHolds.set(token, forName);
    this.requestPass();
    return () => {
      if (!this.growthHolds.delete(token)) return;
      this.holdsSeen.delete(token);
      this.requestPass();
    };
  }

  // ---- views -------------------------------------------------------------------------------

  lastSnapshot(): HostSnapshot | null {
    return this.snapshot;
  }

  lastDecisions(): VmDecision[] {
    return this.decisions;
  }

  state(): HostState {
    const views = new Map<number, VmView>();
    for (const rec of this.doms.values()) {
      const override = this.config.vms[rec.name];
      views.set(rec.domid, {
        status: rec.status ?? 'missing',
        reason: rec.reason,
        reasonAtMs: rec.reasonAtMs,
        pinned: override?.pinKib !== undefined,
        targetKib: rec.targetKib,
      });
    }
    return buildHostState({
      atMs: this.clock.now(),
      policy: this.config.policy.policy,
      summary: this.summary,
      snapshot: this.snapshot,
      decisions: new Map(this.decisions.map((d) => [d.domid, d])),
      views,
      decisionLog: [...this.decisionLog],
      reservationSince: (id) => this.reservationSeen.get(id) ?? this.clock.now(),
      toWallMs: (mono) => Math.round(this.wallBase + (mono - this.monoBase)),
    });
  }

  /** StateSource (dom0/state/source.ts) for the state server. */
  current(): HostState {
    return this.state();
  }

  // ---- the loop ----------------------------------------------------------------------------

  private async loopPass(): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    this.pending = false;
    this.lastPassStartMs = this.clock.now();
    try {
      if (this.xsBroken) await this.recoverXenstore();
      if (!this.xsBroken) await this.runPass();
    } finally {
      this.running = false;
    }
    if (this.pending || this.xsBroken) {
      this.pending = false;
      this.requestPass();
    }
  }

  private async pass(): Promise<PassReport> {
    const seq = ++this.passSeq;
    const t0 = this.clock.now();
    try {
      const report = await this.balance(seq, t0);
      this.afterPass(report);
      return report;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error({ pass: seq, err: message }, 'pass failed; loop continues');
      if (!this.xsBroken && !(await this.xenstoreAlive())) this.markXenstoreBroken('pass failed and xenstore does not answer');
      const report: PassReport = {
        seq, atMs: t0, durationMs: this.clock.now() - t0, summary: this.summary, changes: [], held: [], error: message,
      };
      this.afterPass(report);
      return report;
    }
  }

  private afterPass(report: PassReport): void {
    this.emit('pass', report);
    // StateSource: current() moved; a viewer pulls it (building it costs ~N objects).
    this.emit('change');
  }

  private async balance(seq: number, t0: number): Promise<PassReport> {
    if (this.rebuild) {
      this.rebuild = false;
      await this.forgetDomains();
    }
    // Xen's facts and the guests' new reports are independent round trips: made together, a
    // pass waits for the slower one, not for both. Domains found now are read right after.
    const [facts] = await Promise.all([this.host.facts(), this.readDirtyGuests()]);
    const byId = new Map(facts.domains.map((d) => [d.domid, d]));
    await this.reconcileDomains(facts);
    await this.readDirtyGuests();
    const now = this.clock.now();
    this.updateSignals(now, byId);
    const newlyStuck = this.updateProgress(byId, now);
    for (const domid of this.clampPending) {
      const rec = this.doms.get(domid);
      if (rec?.stuck && !newlyStuck.includes(rec)) newlyStuck.push(rec);
    }
    this.clampPending.clear();
    await this.clampStuck(newlyStuck, byId);

    const reservations = this.reservationsOf();
    for (const id of this.reservationSeen.keys()) if (!reservations.some((r) => r.id === id)) this.reservationSeen.delete(id);
    await this.holdGrowers(byId);

    const snapshot = buildSnapshot(facts, this.knowledge(), (name) => this.config.vms[name] ?? null, reservations, now);
    const result = this.decideFn(snapshot, this.config.policy);
    this.snapshot = snapshot;
    this.decisions = result.decisions;
    this.summary = result.summary;
    for (const [domid, h] of Object.entries(result.history)) {
      const rec = this.doms.get(Number(domid));
      if (rec) rec.history = h;
    }

    const plan = planApply({
      decisions: result.decisions,
      facts: byId,
      targets: new Map([...this.doms.values()].map((r) => [r.domid, r.targetKib])),
      stuck: new Set([...this.doms.values()].filter((r) => r.stuck).map((r) => r.domid)),
      lowerMaxmem: this.svc.lowerMaxmemOnShrink,
    });
    const applied = await applyPlan(plan, facts, {
      xs: this.xs,
      host: this.host,
      clock: this.clock,
      promisedKib: (ids) => this.promisedKib(ids),
      targetKib: (domid) => this.doms.get(domid)?.targetKib ?? null,
      reservedKib: () => this.reservationsOf().reduce((sum, r) => sum + r.kib, 0),
      growthHeld: () => (this.growthHolds.size > 0 ? `held while a start of ${[...new Set(this.growthHolds.values())].join(', ')} is admitted` : null),
      onPoll: (f) => this.onWaitPoll(f),
      onApplied: (a) => this.recordApplied(a),
    }, {
      reserveKib: this.config.policy.hostFreeReserve,
      waitMaxMs: this.svc.growWaitMaxMs,
      waitPollMs: this.svc.growWaitPollMs,
    });

    const report: PassReport = {
      seq,
      atMs: t0,
      durationMs: this.clock.now() - t0,
      summary: result.summary,
      changes: applied.applied.map(({ action: a, phase }) => ({
        domid: a.domid, name: a.name, fromKib: a.fromKib, toKib: a.toKib, phase, reason: a.reason,
      })),
      held: [...plan.skipped, ...applied.deferred],
      error: null,
    };
    if (report.changes.length > 0 || report.held.length > 0) {
      // Passes that only re-hold the same VMs (free memory short, a VM paused) log at debug.
      this.log[report.changes.length > 0 ? 'info' : 'debug']({
        pass: seq,
        ms: Math.round(report.durationMs * 10) / 10,
        freeKib: (applied.facts ?? facts).freeKib,
        summary: result.summary,
        changes: report.changes.map((c) => ({ vm: c.name, domid: c.domid, from: c.fromKib, to: c.toKib, reason: c.reason })),
        ...(report.held.length > 0 ? { held: report.held } : {}),
      }, 'balanced');
    }
    this.scheduleConverge(applied.facts ?? facts);
    return report;
  }

  // ---- discovery ---------------------------------------------------------------------------

  private async watchDomainList(): Promise<void> {
    const onChange = () => this.requestPass();
    this.globalUnwatch = [
      await this.xs.watch('@introduceDomain', onChange),
      await this.xs.watch('@releaseDomain', onChange),
    ];
  }

  private async reconcileDomains(facts: HostFacts): Promise<void> {
    const live = new Set(facts.domains.map((d) => d.domid));
    for (const [domid, rec] of this.doms) {
      if (live.has(domid)) continue;
      this.doms.delete(domid);
      await teardownDomain(rec);
      this.log.info({ vm: rec.name, domid }, 'domain gone');
    }
    const fresh = facts.domains.filter((d) => !this.doms.has(d.domid) && !d.dying);
    await Promise.all(fresh.map(async (d) => {
      try {
        const rec = await setupDomain(this.xs, d.domid, d.name, (domid, key) => this.onGuestWrite(domid, key));
        if (this.stopped) return void (await teardownDomain(rec));
        this.doms.set(d.domid, rec);
        this.log.info({ vm: rec.name, domid: d.domid, targetKib: rec.targetKib, ceilingKib: rec.staticMaxKib }, 'domain found');
      } catch (err) {
        this.log.warn({ domid: d.domid, err: err instanceof Error ? err.message : String(err) }, 'domain setup failed; retried next pass');
      }
    }));
  }

  private onGuestWrite(domid: number, key: GuestKey): void {
    const rec = this.doms.get(domid);
    if (rec) {
      rec.dirty.add(key);
      rec.arrivedMs = this.clock.now();
    }
    this.requestPass();
  }

  private async readDirtyGuests(): Promise<void> {
    const dirty = [...this.doms.values()].filter((r) => r.dirty.size > 0 || r.refreshTarget);
    await Promise.all(dirty.map(async (rec) => {
      if (rec.refreshTarget) {
        rec.refreshTarget = false;
        const found = await readTarget(this.xs, rec.domid);
        if (found !== rec.targetKib) {
          this.log.info({ vm: rec.name, domid: rec.domid, was: rec.targetKib, found }, 'memory/target changed outside xmem');
          rec.targetKib = found;
          rec.ownTarget = false;
        }
      }
      if (rec.dirty.size > 0) {
        const which = rec.dirty;
        rec.dirty = new Set();
        rec.raw = await readGuestKeys(this.xs, rec.domid, which, rec.raw);
        rec.reread = true;
      }
    }));
  }

  // ---- per-VM state ------------------------------------------------------------------------

  private updateSignals(now: number, facts: Map<number, DomainFacts>): void {
    const staleAfterMs = this.config.policy.staleReportMs;
    for (const rec of this.doms.values()) {
      // Fast path (a pass usually follows one guest's write): nothing re-read since the last
      // reading, so only its age moved; a report about to go stale takes the full path.
      const prev = rec.reading;
      if (!rec.reread && prev && prev.signal.kind !== 'none') {
        if (prev.signal.kind !== 'xmem' || now - prev.track.sinceMs <= staleAfterMs) {
          rec.reading = agedReading(prev, now);
          continue;
        }
      }
      rec.reread = false;
      const r = readSignal(rec.raw, rec.signalTrack, now, rec.arrivedMs, { staleAfterMs, allocationKib: facts.get(rec.domid)?.actualKib ?? null });
      rec.signalTrack = r.track;
      rec.reading = r;
      if (r.status !== rec.status) {
        // One line per state change per VM: a guest rewriting garbage cannot flood the log.
        const line = { vm: rec.name, domid: rec.domid, from: rec.status ?? 'new', to: r.status, detail: r.detail };
        if (r.status === 'ok' || (rec.status === null && r.status === 'missing')) this.log.info(line, 'guest signal');
        else this.log.warn(line, 'guest signal');
        rec.status = r.status;
      }
    }
  }

  /** Stuck detection; returns the VMs that just became stuck (to clamp). */
  private updateProgress(byId: Map<number, DomainFacts>, now: number): DomainRecord[] {
    const opts = { stuckAfterMs: this.svc.stuckAfterMs, toleranceKib: this.svc.targetToleranceKib };
    const newlyStuck: DomainRecord[] = [];
    for (const rec of this.doms.values()) {
      const f = byId.get(rec.domid);
      if (!f || f.paused || f.dying) {
        rec.progress = undefined;
        continue;
      }
      if (rec.clampKib !== undefined) {
        // A clamped grower is at its target by construction: it counts as moving again only
        // once its allocation leaves the clamp.
        if (Math.abs(f.actualKib - rec.clampKib) <= opts.toleranceKib) continue;
        rec.clampKib = undefined;
        rec.stuck = false;
        rec.progress = undefined;
        this.log.info({ vm: rec.name, domid: rec.domid, actualKib: f.actualKib }, 'VM moving again; balanced again');
        continue;
      }
      // Only targets xmem set are tracked: a VM nobody asked to move is never "stuck".
      const target = rec.ownTarget ? rec.targetKib : null;
      const { track, event } = trackProgress(rec.progress, f.actualKib, target, now, opts);
      rec.progress = track;
      if (event === 'unstuck' && target === null) {
        rec.stuck = false;
      } else if (event === 'stuck') {
        rec.stuck = true;
        rec.reason = `stuck: no progress toward ${rec.targetKib} KiB for ${this.svc.stuckAfterMs / 1000} s`;
        rec.reasonAtMs = now;
        newlyStuck.push(rec);
        this.log.warn({ vm: rec.name, domid: rec.domid, actualKib: f.actualKib, targetKib: rec.targetKib }, 'VM stuck; excluded until it moves');
      } else if (event === 'unstuck') {
        rec.stuck = false;
        this.log.info({ vm: rec.name, domid: rec.domid, actualKib: f.actualKib }, 'VM moving again; balanced again');
      }
    }
    return newlyStuck;
  }

  /**
   * squeezed's rule for a VM that became inactive (anchors §2.3): maxmem = min(target, actual)
   * + slack, so it cannot resume growing into memory given to others meanwhile. A stuck grower
   * first has its target brought down to what it has (libxl refuses a ceiling below
   * memory/target), which also ends its promise; it stays excluded until it moves or the next
   * sweep retries it. Normal handling needs nothing more: a later grow raises maxmem first.
   */
  private async clampStuck(recs: DomainRecord[], byId: Map<number, DomainFacts>): Promise<void> {
    await Promise.all(recs.map(async (rec) => {
      const f = byId.get(rec.domid);
      if (!f || rec.targetKib === null) return;
      const keepKib = Math.round(Math.min(rec.targetKib, f.actualKib));
      const maxmemKib = keepKib + MAXMEM_SLACK_KIB;
      try {
        if (rec.targetKib > keepKib) {
          await this.xs.write(keys(rec.domid).target, String(keepKib));
          this.recordApplied({
            action: { domid: rec.domid, name: rec.name, fromKib: rec.targetKib, toKib: keepKib, maxmemKib, reason: rec.reason },
            phase: 'shrink',
          });
          rec.reason = `stuck: could not grow for ${this.svc.stuckAfterMs / 1000} s; held at ${keepKib} KiB until it moves`;
          rec.clampKib = keepKib;
          rec.progress = undefined;
        }
        if (f.maxmemKib > maxmemKib) {
          await this.host.setMaxmem(rec.domid, maxmemKib);
          f.maxmemKib = maxmemKib;
        }
      } catch (err) {
        this.log.warn({ vm: rec.name, domid: rec.domid, err: err instanceof Error ? err.message : String(err) }, 'could not clamp a stuck VM');
      }
    }));
  }

  private knowledge(): Map<number, VmKnowledge> {
    const m = new Map<number, VmKnowledge>();
    for (const rec of this.doms.values()) {
      m.set(rec.domid, {
        name: rec.name,
        targetKib: rec.targetKib,
        staticMaxKib: rec.staticMaxKib,
        signal: rec.reading?.signal ?? { kind: 'none', why: 'not yet read' },
        stuck: rec.stuck,
        history: rec.history,
      });
    }
    return m;
  }

  /**
   * A poll of the free-before-allocate wait (up to growWaitMaxMs): the snapshot takes the fresh
   * facts, so admission can plan a start now instead of waiting for this pass to end (while its
   * grows are still unwritten), and a reservation it adds is acted on at the next poll.
   */
  private async onWaitPoll(facts: HostFacts): Promise<void> {
    const byId = new Map(facts.domains.map((d) => [d.domid, d]));
    await this.holdGrowers(byId);
    const snap = this.snapshot;
    if (snap) {
      this.snapshot = {
        ...snap,
        nowMs: this.clock.now(),
        freeKib: facts.freeKib,
        reservations: this.reservationsOf(),
        vms: snap.vms.map((vm) => {
          const f = byId.get(vm.domid);
          const targetKib = this.doms.get(vm.domid)?.targetKib ?? vm.targetKib;
          return f ? { ...vm, actualKib: f.actualKib, maxmemKib: f.maxmemKib, targetKib, paused: f.paused, dying: f.dying } : vm;
        }),
      };
    }
  }

  /**
   * qmemman's inhibit_balloon_up (anchors §1.6): while a start is being admitted (holdGrowth)
   * and when a reservation appears, VMs still growing toward a target set before are held at
   * what they have (target and ceiling), so their balloons cannot take the free memory the
   * start is planned on or what donors free for it. Growth they still need goes through the
   * policy and the applier's gate again, which count the reservation. Runs at the start of a
   * pass and at every poll of the free-before-allocate wait. Only targets above the allocation
   * are lowered, to the allocation: nobody gives memory back, nobody goes below a floor.
   */
  private async holdGrowers(byId: Map<number, DomainFacts>): Promise<void> {
    const now = this.clock.now();
    const fresh = this.reservationsOf().filter((r) => !this.reservationSeen.has(r.id));
    for (const r of fresh) this.reservationSeen.set(r.id, now);
    for (const token of this.growthHolds.keys()) this.holdsSeen.add(token);
    const starting = [...new Set([...this.growthHolds.values(), ...fresh.map((r) => r.forName)])];
    if (starting.length === 0) return;
    // "About" its allocation: within 1 MiB is xl's rounding, not growth.
    const growers = [...this.doms.values()].filter((rec) => {
      const f = byId.get(rec.domid);
      return f && !f.paused && !f.dying && rec.ownTarget && rec.targetKib !== null
        && this.config.vms[rec.name]?.pinKib === undefined && f.actualKib + MAXMEM_SLACK_KIB < rec.targetKib;
    });
    await Promise.all(growers.map(async (rec) => {
      const f = byId.get(rec.domid)!;
      const toKib = Math.round(f.actualKib);
      const maxmemKib = this.svc.lowerMaxmemOnShrink && f.maxmemKib > toKib + MAXMEM_SLACK_KIB ? toKib + MAXMEM_SLACK_KIB : null;
      const reason = `held at its allocation: memory is being freed for ${starting.join(', ')}`;
      try {
        // Target first, then the ceiling (libxl refuses a ceiling below memory/target).
        await this.xs.write(keys(rec.domid).target, String(toKib));
        this.recordApplied({ action: { domid: rec.domid, name: rec.name, fromKib: rec.targetKib, toKib, maxmemKib, reason }, phase: 'shrink' });
        if (maxmemKib !== null) {
          await this.host.setMaxmem(rec.domid, maxmemKib);
          f.maxmemKib = maxmemKib; // this pass plans on these facts: a grow raises it again first
        }
      } catch (err) {
        this.log.warn({ vm: rec.name, domid: rec.domid, err: err instanceof Error ? err.message : String(err) }, 'could not hold a growing VM for a reservation');
      }
    }));
    if (growers.length > 0) {
      this.log.info({ reservations: starting, held: growers.map((r) => r.name) }, 'VMs still growing held at their allocation for a VM start');
    }
  }

  /**
   * Memory already promised to VMs still growing into targets in force (set by an earlier
   * pass, by this pass's growers too, or kept by a grow deferred now): a paused VM grows into
   * its target once unpaused, so its promise stands; a stuck grower is held at what it has.
   */
  private promisedKib(byId: Map<number, DomainFacts>): number {
    let sum = 0;
    for (const rec of this.doms.values()) {
      const f = byId.get(rec.domid);
      if (!f || rec.targetKib === null || f.dying) continue;
      sum += Math.max(0, rec.targetKib - f.actualKib);
    }
    return sum;
  }

  private recordApplied({ action: a }: Applied): void {
    const rec = this.doms.get(a.domid);
    const now = this.clock.now();
    if (rec) {
      rec.targetKib = a.toKib;
      rec.ownTarget = true;
      rec.reason = a.reason;
      rec.reasonAtMs = now;
    }
    const entry: DecisionLog = {
      atMs: Math.round(this.wallBase + (now - this.monoBase)),
      domid: a.domid, name: a.name, fromKib: a.fromKib, toKib: a.toKib, reason: a.reason,
    };
    this.decisionLog.push(entry);
    if (this.decisionLog.length > DECISION_LOG_MAX) this.decisionLog.shift();
    this.emit('decision', entry);
  }

  // ---- timers ------------------------------------------------------------------------------

  private scheduleSweep(): void {
    this.cancelSweep = this.clock.setTimer(this.svc.sweepIntervalMs, () => {
      if (this.stopped) return;
      for (const rec of this.doms.values()) {
        rec.dirty = new Set(ALL_GUEST_KEYS);
        rec.refreshTarget = true;
        if (rec.clampKib !== undefined) {
          // A stuck grower gets another chance: if it still cannot grow, it is stuck again.
          rec.clampKib = undefined;
          rec.stuck = false;
          this.log.info({ vm: rec.name, domid: rec.domid }, 'stuck VM retried');
        }
      }
      this.requestPass();
      this.scheduleSweep();
    });
  }

  /** While a VM is still moving toward its target, look again soon (stuck detection needs it). */
  private scheduleConverge(facts: HostFacts): void {
    if (this.cancelConverge || this.stopped) return;
    const byId = new Map(facts.domains.map((d) => [d.domid, d]));
    const moving = [...this.doms.values()].some((rec) => {
      const f = byId.get(rec.domid);
      return f && rec.targetKib !== null && rec.ownTarget && !rec.stuck && !f.paused && !f.dying
        && Math.abs(f.actualKib - rec.targetKib) > this.svc.targetToleranceKib;
    });
    if (!moving) return;
    this.cancelConverge = this.clock.setTimer(this.svc.convergePollMs, () => {
      this.cancelConverge = null;
      this.requestPass();
    });
  }

  // ---- xenstore supervision ----------------------------------------------------------------

  /**
   * src/xenstore/client.ts reconnects by itself ('disconnect', then 'reconnect' once its
   * watches are registered again); the daemon may have restarted with an empty tree, so on
   * 'reconnect' every domain is set up again from what xenstore holds now, as after a restart.
   * A client that closes for good ('close') is replaced through deps.reconnect.
   */
  private listenForClose(xs: XenstoreClient): void {
    const em = xs as unknown as Partial<EventEmitter>;
    if (typeof em.on !== 'function') return;
    em.on.call(xs, 'disconnect', (err: unknown) => {
      if (xs !== this.xs || this.stopped) return;
      this.log.warn({ err: err instanceof Error ? err.message : String(err ?? '') }, 'xenstore connection lost; the client reconnects');
    });
    em.on.call(xs, 'reconnect', () => {
      if (xs !== this.xs || this.stopped) return;
      this.rebuild = true;
      this.log.info('xenstore reconnected; rebuilding state from Xen and xenstore');
      this.requestPass();
    });
    em.on.call(xs, 'close', () => {
      if (xs === this.xs && !this.stopped) this.markXenstoreBroken('xenstore connection closed');
    });
    em.on.call(xs, 'error', (err: unknown) => {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'xenstore connection error');
    });
  }

  /** Forgets every domain (unwatching its keys) so the next reconcile sets each up again. */
  private async forgetDomains(): Promise<void> {
    const recs = [...this.doms.values()];
    this.doms.clear();
    for (const rec of recs) await teardownDomain(rec);
  }

  private async xenstoreAlive(): Promise<boolean> {
    try {
      await withTimeout(this.xs.directory('/'), 2000);
      return true;
    } catch {
      return false;
    }
  }

  private markXenstoreBroken(why: string): void {
    if (this.xsBroken) return;
    this.xsBroken = true;
    this.log.error({ why }, 'xenstore connection lost; reconnecting');
    this.requestPass();
  }

  /** Reconnects (with backoff) and rebuilds: every domain is set up again from xenstore. */
  private async recoverXenstore(): Promise<void> {
    if (!this.reconnectFn) {
      this.log.error('xenstore connection lost and no way to reconnect was given');
      await this.clock.sleep(1000);
      this.xsBroken = !(await this.xenstoreAlive());
      return;
    }
    let delay = 100;
    while (!this.stopped) {
      try {
        const old = this.xs;
        this.xs = await this.reconnectFn();
        await old.close().catch(() => {});
        this.listenForClose(this.xs);
        this.doms.clear(); // their watches died with the old connection
        await this.watchDomainList();
        this.xsBroken = false;
        this.log.info('xenstore replaced; rebuilding state from Xen and xenstore');
        return;
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err), retryMs: delay }, 'xenstore reconnect failed');
        await this.clock.sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
