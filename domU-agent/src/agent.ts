import { EventEmitter } from 'node:events';
import type { Clock } from '../../src/clock.js';
import type { GuestReport } from '../../src/schemas/report.js';
import { encodeGuestReport, REPORT_KEY, REPORT_MAX_BYTES } from '../../src/schemas/report-wire.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import { Helper, type HelperSpec, type HelperTiming } from './helper.js';
import { StateLog, type LogLine } from './log.js';
import { errnoOf } from './procfile.js';
import { QubesKey } from './publish.js';
import { buildReport, memView, psiView } from './report.js';
import { Planner, type MemView, type PsiView, type Reason, type ScheduleConfig } from './schedule.js';
import type { MemSample, Sources } from './sources.js';
import { encodeWatch } from './watch.js';

export interface AgentConfig extends ScheduleConfig {
  /** Also write Qubes' memory/meminfo where it exists and is writable. */
  qubes: boolean;
  /** Backoff after a failed write or connect: doubles from min to max. */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A write not answered within this is treated as a dead connection (closed, reopened). */
  writeTimeoutMs: number;
}

/**
 * The client the agent needs: src/xenstore/client.ts's connection, which emits 'disconnect' and
 * 'reconnect' and reconnects by itself (requests made meanwhile would wait, so the agent does
 * not make any until it is back).
 */
export type AgentXenstore = XenstoreClient & Pick<EventEmitter, 'on' | 'off'> & { readonly connected?: boolean };

export interface AgentDeps {
  clock: Clock;
  sources: Sources;
  /** Opens the xenstore connection (xenbus device in a guest, a socket in tests). */
  connect: () => Promise<AgentXenstore>;
  log: LogLine;
  config: AgentConfig;
  /** The native PSI-trigger helper, or null to poll (domU-agent/native/psi-trigger.c). */
  helper?: HelperSpec | null;
  /** Respawn backoff of the helper (tests shorten it). */
  helperTiming?: HelperTiming;
}

export interface Published {
  at: number;
  reason: Reason;
  report: GuestReport;
}

/** Errors the daemon itself answers with: the connection is fine, only the request failed. */
const DAEMON_ERRNOS = new Set(['EACCES', 'ENOSPC', 'EAGAIN', 'EINVAL', 'ENOENT', 'E2BIG', 'EPERM', 'EIO', 'EQUOTA', 'EEXIST', 'ENOSYS', 'EBUSY', 'EROFS', 'ENOMEM']);

/**
 * The agent's imperative shell: one timer on the injected clock, reads the sources the Planner
 * asks for, publishes the report when it says so, and survives every failure with backoff and
 * one log line per change of state. Emits 'published' (Published) after each report that
 * reached xenstore. With the native helper running, its events (a PSI trigger fired, meminfo
 * left the watched ranges) replace the stall poll and the meminfo sampling; without it, or when
 * it dies, the loop polls as before.
 */
export class Agent extends EventEmitter {
  private readonly planner: Planner;
  private readonly states: StateLog;
  private readonly qubes: QubesKey | null;
  private xs: AgentXenstore | null = null;
  private linkDown = false;
  private cancelTimer: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private ticking = false;
  private seq = 0;
  private failures = 0;
  private readonly helper: Helper | null;
  /** The watch command the helper holds (null: none; it drops its watch when it fires). */
  private sentWatch: string | null = null;

  constructor(private readonly deps: AgentDeps) {
    super();
    this.planner = new Planner(deps.config);
    this.states = new StateLog(deps.log);
    this.qubes = deps.config.qubes ? new QubesKey(this.states, deps.config.thresholdKib) : null;
    const spec = deps.helper ?? null;
    const { psiIntervalMs, intervalMs } = deps.config;
    const psiPoll = psiIntervalMs ? `polling PSI every ${psiIntervalMs} ms` : 'no stall fast path';
    const fallback = `${psiPoll} and meminfo every ${intervalMs} ms`;
    let trigger = false;
    this.helper = spec
      ? new Helper(spec, deps.clock, this.states, {
          ready: (armed) => {
            trigger = armed;
            this.sentWatch = null;
            this.planner.useEvents({ psi: armed, mem: spec.watchesMeminfo });
            this.wake();
          },
          stall: () => {
            this.planner.stallEvent(this.deps.clock.now());
            this.wake();
          },
          mem: () => {
            this.sentWatch = null;
            this.planner.memEvent();
            this.wake();
          },
          badWatch: () => {
            this.planner.useEvents({ psi: trigger, mem: false });
            this.wake();
          },
          down: () => {
            trigger = false;
            this.sentWatch = null;
            this.planner.useEvents({ psi: false, mem: false });
            this.wake();
          },
        }, fallback, psiPoll, intervalMs, deps.helperTiming)
      : null;
  }

  start(): void {
    this.helper?.start();
    this.arm(this.deps.clock.now());
  }

  /** Stops the timer and the helper, waits for a tick in flight, closes the connection and the files. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    await this.helper?.stop();
    await this.running;
    await this.dropClient();
    this.deps.sources.close();
  }

  /** For tests and logs: the helper's pid while it runs, and whether it is armed. */
  get helperState(): { pid: number | undefined; ready: boolean } | null {
    return this.helper ? { pid: this.helper.pid, ready: this.helper.ready } : null;
  }

  /** An event: tick now (a tick in flight re-arms from the planner when it ends). */
  private wake(): void {
    if (this.stopped || this.ticking) return;
    this.tick();
  }

  /** Gives the helper the meminfo ranges for the current state, when they changed. */
  private syncWatch(): void {
    if (!this.helper?.ready) return;
    const line = encodeWatch(this.planner.watchForms());
    if (line === this.sentWatch) return;
    this.sentWatch = line;
    this.helper.send(line);
  }

  /** Resolves when no tick is in flight (tests on a fake clock wait for this between steps). */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** For tests and logs: the Qubes key's state. */
  get qubesStatus(): string {
    return this.qubes?.status ?? 'disabled';
  }

  private arm(at: number): void {
    if (this.stopped) return;
    this.cancelTimer?.();
    this.cancelTimer = this.deps.clock.setTimer(Math.max(0, at - this.deps.clock.now()), this.onTimer);
  }

  private readonly onTimer = (): void => this.tick();

  /**
   * One wake-up. Synchronous unless a report goes out: the common tick (a stall poll that finds
   * nothing) allocates no promise and re-arms the timer directly.
   */
  private tick(): void {
    // One tick at a time; a publish in flight re-arms the timer when it ends.
    if (this.stopped || this.ticking) return;
    const { clock } = this.deps;
    let reason: Reason | null = null;
    let memSample: MemSample | undefined;
    try {
      const now = clock.now();
      const due = this.planner.due(now);
      const obs: { psi?: PsiView | null; mem?: MemView } = {};
      if (due.psi) {
        const r = this.deps.sources.readPsi();
        if (r.ok) {
          obs.psi = r.value ? psiView(r.value) : null;
          if (!r.value) this.states.set('psi', 'none', 'no memory PSI on this kernel: reporting meminfo only, no stall fast path');
          else this.states.ok('psi', 'ok', 'memory PSI readable again');
        } else {
          this.states.set('psi', `bad:${r.error}`, `cannot use memory PSI: ${r.error}`);
        }
      }
      if (due.mem) {
        const r = this.deps.sources.readMem();
        if (r.ok) {
          memSample = r.value;
          obs.mem = memView(r.value);
          this.states.ok('mem', 'ok', 'meminfo readable again');
        } else {
          this.states.set('mem', `bad:${r.error}`, `cannot read meminfo: ${r.error}`);
        }
      }
      reason = this.planner.observe(now, obs, due);
    } catch (err) {
      // Never let one bad tick end the loop (qmemman's balancer died that way, #4890).
      this.states.set('tick', 'crash', `unexpected error, continuing: ${errnoOf(err)}`);
    }
    if (reason === null) {
      this.syncWatch();
      this.arm(this.planner.nextWake(clock.now()));
      return;
    }
    this.ticking = true;
    this.running = this.publish(reason, memSample)
      .catch((err: unknown) => this.states.set('tick', 'crash', `unexpected error, continuing: ${errnoOf(err)}`))
      .finally(() => {
        this.ticking = false;
        this.running = null;
        this.syncWatch();
        this.arm(this.planner.nextWake(clock.now()));
      });
  }

  /** `mem`: the memory sample this wake read, if it did (the report is built from it). */
  private async publish(reason: Reason, mem?: MemSample): Promise<void> {
    const { clock, sources } = this.deps;
    const sample = sources.readFull(mem);
    if (!sample.ok) {
      this.states.set('sample', `bad:${sample.error}`, `cannot build a report: ${sample.error}`);
      this.planner.failed(clock.now(), this.backoff());
      return;
    }
    this.states.ok('sample', 'ok', 'report sources readable again');
    const report = buildReport(sample.value, this.seq + 1);
    const encoded = encodeGuestReport(report);
    if (encoded.length > REPORT_MAX_BYTES) {
      this.states.set('sample', 'oversize', `report of ${encoded.length} bytes exceeds ${REPORT_MAX_BYTES}; not sent`);
      this.planner.failed(clock.now(), this.deps.config.backoffMaxMs);
      return;
    }
    if (this.linkDown) {
      this.planner.failed(clock.now(), this.backoff());
      return;
    }
    let xs: AgentXenstore;
    try {
      xs = await this.client();
      await this.timed(xs.write(REPORT_KEY, encoded));
    } catch (err) {
      const errno = errnoOf(err);
      if (!DAEMON_ERRNOS.has(errno)) await this.dropClient();
      const wait = this.backoff();
      this.states.set('xenstore', `error:${errno}`, `cannot write ${REPORT_KEY}: ${errno}; retrying with backoff (now ${wait} ms, at most ${this.deps.config.backoffMaxMs} ms)`);
      this.planner.failed(clock.now(), wait);
      return;
    }
    const at = clock.now();
    this.seq = report.seq;
    const recovered = this.failures > 0 ? ` after ${this.failures} failed attempt(s)` : '';
    this.failures = 0;
    this.states.set('xenstore', 'ok', `writing ${REPORT_KEY}${recovered}`);
    const view = memView(sample.value);
    this.planner.published(at, reason, view, sample.value.psi ? psiView(sample.value.psi) : null);
    if (this.qubes) {
      await this.timed(this.qubes.publish(xs, view, reason === 'first' || reason === 'heartbeat')).catch((err: unknown) => {
        this.states.set('qubes', `error:${errnoOf(err)}`, `memory/meminfo write failed: ${errnoOf(err)}; will retry`);
      });
    }
    this.emit('published', { at, reason, report } satisfies Published);
  }

  private async client(): Promise<AgentXenstore> {
    if (this.xs) return this.xs;
    const xs = await this.deps.connect();
    if (this.stopped) {
      await xs.close().catch(() => undefined);
      throw Object.assign(new Error('stopped'), { code: 'ESTOPPED' });
    }
    xs.on('disconnect', this.onDisconnect);
    xs.on('reconnect', this.onReconnect);
    this.xs = xs;
    this.linkDown = false;
    return xs;
  }

  private readonly onDisconnect = (err?: Error): void => {
    this.linkDown = true;
    this.states.set('xenstore', 'lost', `xenstore connection lost${err?.message ? ` (${err.message})` : ''}; reconnecting`);
  };

  /** Back: the daemon may have restarted with an empty tree, so publish again at once. */
  private readonly onReconnect = (): void => {
    this.linkDown = false;
    this.failures = 0;
    this.states.set('xenstore', 'reconnected', 'xenstore connection back; publishing again');
    this.planner.kick(this.deps.clock.now());
    this.arm(this.deps.clock.now());
  };

  /** Rejects with ETIMEDOUT when `p` takes longer than the write timeout. */
  private timed<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.deps.clock.setTimer(this.deps.config.writeTimeoutMs, () =>
        reject(Object.assign(new Error('xenstore request timed out'), { code: 'ETIMEDOUT' })),
      );
      p.then(
        (v) => {
          cancel();
          resolve(v);
        },
        (e: unknown) => {
          cancel();
          reject(e);
        },
      );
    });
  }

  /** A connection-level failure: close it, so the next attempt connects afresh. */
  private async dropClient(): Promise<void> {
    const xs = this.xs;
    this.xs = null;
    this.linkDown = false;
    xs?.off('disconnect', this.onDisconnect);
    xs?.off('reconnect', this.onReconnect);
    await xs?.close().catch(() => undefined);
  }

  private backoff(): number {
    const { backoffMinMs, backoffMaxMs } = this.deps.config;
    this.failures++;
    return Math.min(backoffMaxMs, backoffMinMs * 2 ** Math.min(this.failures - 1, 20));
  }
}
