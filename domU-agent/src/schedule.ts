import { decayReportAt, decayedPastLevel, msUntilBelow, nextLevelDown } from './decay.js';
import { quietForms, type Form } from './watch.js';

/**
 * When to read what, and when a report is worth a xenstore write. Pure: time comes in as
 * arguments (the agent's loop passes its injected Clock's now()), no timers, no I/O, so the
 * whole policy runs deterministically on a fake clock.
 */
export interface ScheduleConfig {
  /** Period of the meminfo (+ balloon) sample. */
  intervalMs: number;
  /** Period of the cheap stall poll (reads only the PSI file); 0 disables the fast path. */
  psiIntervalMs: number;
  /** meminfo-writer's change threshold (KiB); halved for growth above ~77 % utilisation. */
  thresholdKib: number;
  /**
   * Growth in demand (MemAvailable falling, Committed_AS rising) worth a report (KiB), when
   * smaller than thresholdKib: that is what the manager must answer quickly, and at the rates a
   * guest allocates, 30 MB alone is seconds. Qubes' used number keeps meminfo-writer's rule.
   */
  growThresholdKib: number;
  /** Minimum spacing between two writes (1000 / max writes per second). */
  minGapMs: number;
  /** Minimum spacing between two reports caused only by stall growth (PSI at ≤ 1 Hz). */
  stallGapMs: number;
  /** A report at least this often, so a dead agent can be told from a quiet one. */
  heartbeatMs: number;
  /** Growth of PSI `some` total (µs) since the last report that counts as a new stall (default: any). */
  stallUs: number;
  /** avg10/avg60 below this (percent) is calm: no further decay reports. */
  psiCalm: number;
  /**
   * With the native helper's events (PSI trigger, meminfo watch), each source is still read at
   * least this often: a slow safety net instead of the polls. A report reads everything, so with
   * the default heartbeat (60 s) the heartbeat is the safety net and costs no wake of its own.
   */
  safetyMs: number;
  /**
   * The PSI trigger's window. The kernel signals at most once per window, and its first event
   * can come before the printed total has moved, so after each event PSI is polled again (at
   * psiIntervalMs) until one window has passed: polling only while stalls are happening.
   */
  triggerWindowMs: number;
}

export const DEFAULT_SCHEDULE: ScheduleConfig = {
  intervalMs: 1000,
  psiIntervalMs: 150,
  thresholdKib: 30000,
  growThresholdKib: 8192,
  minGapMs: 100,
  stallGapMs: 1000,
  heartbeatMs: 60_000,
  stallUs: 1,
  psiCalm: 0.1,
  safetyMs: 60_000,
  triggerWindowMs: 500,
};

/** The memory numbers thresholds are applied to (KiB). */
export interface MemView {
  /** MemTotal, or the balloon's current size when known (as meminfo-writer does). */
  totalKib: number;
  /** Qubes' used number: total − free − buffers − cached + swap used. */
  usedKib: number;
  availKib: number;
  commitKib: number;
  swapUsedKib: number;
  /** totalKib is the balloon's current size (not MemTotal): which raw column a watcher follows. */
  totalIsBalloon?: boolean;
}

/** Memory PSI `some` line: what stall detection and decay follow. */
export interface PsiView {
  total: number;
  avg10: number;
  avg60: number;
}

/**
 * Timers may fire a little before the time asked for (libuv rounds to whole ms against a cached
 * loop time). Anything due within this counts as due now, or each tick would cost a second
 * wake-up one millisecond later.
 */
export const TIMER_SLACK_MS = 2;

export type Reason = 'first' | 'stall' | 'memory' | 'decay' | 'heartbeat' | 'retry';

/** meminfo-writer's rule on the used number (qubes-linux-utils meminfo-writer.c). */
export function usedChanged(prev: Pick<MemView, 'usedKib'>, cur: Pick<MemView, 'usedKib' | 'totalKib'>, thresholdKib: number): boolean {
  const usedDiff = Math.abs(cur.usedKib - prev.usedKib);
  if (usedDiff > thresholdKib) return true;
  // Above ~77 % utilisation (used/10 > total/13, integer maths as in C) growth counts at half.
  const busy = Math.floor(cur.usedKib / 10) > Math.floor((cur.totalKib + 12) / 13);
  return cur.usedKib > prev.usedKib && busy && usedDiff > Math.floor(thresholdKib / 2);
}

/**
 * meminfo-writer's rule, plus the same threshold on the other numbers xmem reports, and the
 * (smaller) grow threshold on demand rising: MemAvailable down or Committed_AS up.
 */
export function memoryChanged(prev: MemView, cur: MemView, thresholdKib: number, growKib = thresholdKib): boolean {
  if (usedChanged(prev, cur, thresholdKib)) return true;
  return (
    prev.availKib - cur.availKib > growKib ||
    cur.commitKib - prev.commitKib > growKib ||
    Math.abs(cur.availKib - prev.availKib) > thresholdKib ||
    Math.abs(cur.commitKib - prev.commitKib) > thresholdKib ||
    Math.abs(cur.swapUsedKib - prev.swapUsedKib) > thresholdKib ||
    Math.abs(cur.totalKib - prev.totalKib) > thresholdKib
  );
}

interface Published {
  at: number;
  mem: MemView;
  psi: PsiView | null;
}

/** What the loop should read at a wake-up. */
export interface Due {
  psi: boolean;
  mem: boolean;
}

/**
 * What the native helper tells the loop (domU-agent/native/psi-trigger.c): `psi`, a PSI trigger
 * is armed (a stall wakes the loop, no stall poll needed); `mem`, it watches meminfo against
 * watchForms() (a possible memory change wakes the loop, no meminfo sampling needed).
 */
export interface Events {
  psi: boolean;
  mem: boolean;
}

export class Planner {
  private last: Published | null = null;
  private lastStallAt = -Infinity;
  private decayAt: number | null = null;
  private psiReadAt = -Infinity;
  private memReadAt = -Infinity;
  /** An event asked for a read at the next wake. */
  private psiKick = false;
  private memKick = false;
  /** After a trigger event, PSI is polled until this time. */
  private followUntil = -Infinity;
  private events: Events = { psi: false, mem: false };
  /** The last meminfo seen (published or not): where the watch ranges must hold. */
  private seen: MemView | null = null;
  private forms: { last: Published | null; seen: MemView | null; forms: Form[] | null } | null = null;
  /** A report wanted but held back by the rate limit or a failure backoff. */
  private pending: { at: number; reason: Reason } | null = null;
  private psiAvailable = true;

  constructor(readonly cfg: ScheduleConfig) {}

  /** Which sources to read now. */
  due(now: number): Due {
    const t = now + TIMER_SLACK_MS;
    const psiWanted = t >= this.nextPsiAt() || (this.decayAt !== null && t >= this.decayAt);
    return {
      psi: this.psiAvailable && psiWanted,
      mem: t >= this.nextMemAt(),
    };
  }

  /**
   * The helper's state changed. Either way both sources are read at the next wake: after a
   * loss, whatever the helper would have reported is caught at once; at arming, a stall just
   * before it is not missed.
   */
  useEvents(events: Events): void {
    if (events.psi === this.events.psi && events.mem === this.events.mem) return;
    this.events = { ...events };
    this.psiKick = true;
    this.memKick = true;
  }

  /** The PSI trigger fired at `now`: read PSI at the next wake (which the caller makes now). */
  stallEvent(now: number): void {
    this.psiKick = true;
    this.followUntil = now + this.cfg.triggerWindowMs;
  }

  /** The meminfo watch fired: read meminfo at the next wake. */
  memEvent(): void {
    this.memKick = true;
  }

  /**
   * Ranges for the helper's meminfo watch: while every form holds, no memory report is due (see
   * watch.ts). null when not watching, or when the last sample needs the loop's own sampling.
   */
  watchForms(): Form[] | null {
    if (!this.events.mem || !this.last || !this.seen) return null;
    const c = this.forms;
    if (c && c.last === this.last && c.seen === this.seen) return c.forms;
    const forms = quietForms(this.last.mem, this.seen, this.cfg.thresholdKib, this.cfg.growThresholdKib);
    this.forms = { last: this.last, seen: this.seen, forms };
    return forms;
  }

  private nextPsiAt(): number {
    if (this.psiKick) return -Infinity;
    const poll = this.cfg.psiIntervalMs;
    if (!this.events.psi) return poll > 0 ? this.psiReadAt + poll : Infinity;
    // Following an event up: a poll that falls within the window after it.
    if (poll > 0 && this.psiReadAt <= this.followUntil) return this.psiReadAt + poll;
    return this.psiReadAt + this.cfg.safetyMs;
  }

  private nextMemAt(): number {
    if (this.memKick) return -Infinity;
    return this.memReadAt + (this.watchForms() ? this.cfg.safetyMs : this.cfg.intervalMs);
  }

  /**
   * Feeds what was read at `now` (`read`: what was attempted; a value undefined = not read or
   * unreadable; psi null = the kernel has no PSI) and returns the reason to publish now, or null (possibly with a report deferred to later).
   */
  observe(now: number, obs: { psi?: PsiView | null; mem?: MemView }, read: Due): Reason | null {
    // Reads that failed still count as done: the next attempt waits for the next period.
    if (read.psi) {
      this.psiReadAt = now;
      this.psiKick = false;
    }
    if (obs.psi === null) this.psiAvailable = false;
    if (read.mem) {
      this.memReadAt = now;
      this.memKick = false;
    }
    if (obs.mem) this.seen = obs.mem;

    const t = now + TIMER_SLACK_MS;
    if (this.pending && t < this.pending.at) {
      // Held back by the rate limit: a memory change still goes out at the write rate (not
      // the slower stall rate). A failure backoff holds everything.
      if (this.pending.reason !== 'retry' && this.last && obs.mem && memoryChanged(this.last.mem, obs.mem, this.cfg.thresholdKib, this.cfg.growThresholdKib)) {
        this.pending = { at: Math.min(this.pending.at, this.last.at + this.cfg.minGapMs), reason: 'memory' };
        if (t >= this.pending.at) this.pending.at = now;
      }
      if (t < this.pending.at) return null;
    }
    if (this.pending) {
      const { reason } = this.pending;
      this.pending = null;
      return reason;
    }
    const last = this.last;
    if (last === null) return 'first';

    let reason: Reason | null = null;
    let earliest = last.at + this.cfg.minGapMs;
    if (this.wantsStall(obs.psi)) {
      reason = 'stall';
      earliest = Math.max(earliest, this.lastStallAt + this.cfg.stallGapMs);
    }
    if (obs.mem && memoryChanged(last.mem, obs.mem, this.cfg.thresholdKib, this.cfg.growThresholdKib)) {
      // A memory change goes out at the write rate, not the slower stall rate.
      reason = 'memory';
      earliest = last.at + this.cfg.minGapMs;
    }
    if (reason === null && this.decayAt !== null && t >= this.decayAt && obs.psi) {
      if (last.psi && decayedPastLevel(last.psi, obs.psi, this.cfg.psiCalm)) reason = 'decay';
      else this.decayAt = last.psi ? this.redecay(now, last.psi, obs.psi) : null;
    }
    if (reason === null && t >= last.at + this.cfg.heartbeatMs) reason = 'heartbeat';
    if (reason === null) return null;
    if (t >= earliest) return reason;
    this.pending = { at: earliest, reason };
    return null;
  }

  /** Records a report that reached xenstore. */
  published(now: number, reason: Reason, mem: MemView, psi: PsiView | null): void {
    this.last = { at: now, mem, psi };
    this.seen = mem;
    // A report read everything: with events, the safety net restarts from here (so in a quiet
    // guest it wakes the loop once between two heartbeats, not at its own phase as well).
    if (this.events.psi) this.psiReadAt = now;
    if (this.events.mem) this.memReadAt = now;
    if (reason === 'stall') this.lastStallAt = now;
    this.pending = null;
    this.decayAt = psi ? decayReportAt(now, psi, this.cfg.psiCalm) : null;
  }

  /** A write failed: try again after `backoffMs`, and nothing before. */
  failed(now: number, backoffMs: number): void {
    this.pending = { at: now + backoffMs, reason: 'retry' };
  }

  /** Publish at the next wake, whatever changed (the connection came back). */
  kick(now: number): void {
    this.pending = { at: now, reason: 'retry' };
  }

  /** Absolute time of the next wake-up. */
  nextWake(now: number): number {
    let t = this.nextMemAt();
    if (this.psiAvailable) t = Math.min(t, this.nextPsiAt());
    if (this.pending) t = Math.min(t, this.pending.at);
    if (this.decayAt !== null) t = Math.min(t, this.decayAt);
    if (this.last) t = Math.min(t, this.last.at + this.cfg.heartbeatMs);
    return Math.max(t, now);
  }

  /** For logs and tests: when the next decay report is expected, if any. */
  get decayDueAt(): number | null {
    return this.decayAt;
  }

  private wantsStall(psi: PsiView | null | undefined): boolean {
    const base = this.last?.psi;
    return !!psi && !!base && psi.total - base.total >= this.cfg.stallUs;
  }

  /** The decay was slower than computed (small stalls kept it up): recompute from what is seen now. */
  private redecay(now: number, reported: PsiView, seen: PsiView): number | null {
    let best: number | null = null;
    for (const key of ['avg10', 'avg60'] as const) {
      const level = nextLevelDown(reported[key], this.cfg.psiCalm);
      if (level === null) continue;
      const t = now + Math.max(this.cfg.psiIntervalMs, msUntilBelow(seen[key], level, key));
      if (best === null || t < best) best = t;
    }
    return best;
  }
}
