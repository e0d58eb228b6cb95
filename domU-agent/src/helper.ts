import { spawn, type ChildProcess } from 'node:child_process';
import type { Clock } from '../../src/clock.js';
import type { StateLog } from './log.js';

/** How to start the native helper (domU-agent/native/psi-trigger.c). */
export interface HelperSpec {
  path: string;
  args: string[];
  /** The helper was given a meminfo file (-m) and takes watch ranges on stdin. */
  watchesMeminfo: boolean;
}

export interface HelperEvents {
  /** Running: meminfo watch events will come, and PSI trigger events if `trigger`. */
  ready(trigger: boolean): void;
  /** The PSI trigger fired. */
  stall(): void;
  /** Meminfo left the ranges last sent (the watch is now off until new ones are sent). */
  mem(): void;
  /** It did not understand a watch command (another version?): there is no meminfo watch. */
  badWatch(): void;
  /** Not running any more (exited, failed to start, refused): the loop polls again. */
  down(): void;
}

/** The helper's exit code for "the kernel or the file refuses a trigger": not retried. */
export const EXIT_UNSUPPORTED = 3;

export interface HelperTiming {
  /** Respawn delay after the first failure, doubling up to max. */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Up this long counts as healthy: the next failure starts the backoff afresh. */
  stableMs: number;
}

export const HELPER_TIMING: HelperTiming = { backoffMinMs: 1000, backoffMaxMs: 300_000, stableMs: 60_000 };

/**
 * Runs the native helper as a child process and turns its stdout lines into events. Respawns
 * it with backoff when it dies, but not when it reports the trigger as unsupported (exit 3) or
 * cannot be executed at all. Logs one line per change of state (topic "trigger"). The helper
 * exits by itself when the agent's end of its pipes closes, so it never outlives the agent.
 */
export class Helper {
  private child: ChildProcess | null = null;
  private exited: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;
  private readyAt: number | null = null;
  private cancelRespawn: (() => void) | null = null;
  private stderrTail = '';
  private partial = '';
  private isReady = false;

  constructor(
    private readonly spec: HelperSpec,
    private readonly clock: Clock,
    private readonly states: StateLog,
    private readonly on: HelperEvents,
    /** What the loop does without the helper, for the log lines. */
    private readonly fallback: string,
    /** What it does for PSI without a trigger, and its meminfo period, for the log lines. */
    private readonly fallbackPsi: string,
    private readonly fallbackMemMs: number,
    private readonly timing: HelperTiming = HELPER_TIMING,
  ) {}

  get ready(): boolean {
    return this.isReady;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.stopped || this.child) return;
    this.cancelRespawn = null;
    this.stderrTail = '';
    this.partial = '';
    let child: ChildProcess;
    try {
      child = spawn(this.spec.path, this.spec.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      this.failed(`cannot start: ${(err as Error).message}`, true);
      return;
    }
    this.child = child;
    this.exited = new Promise<void>((resolve) => {
      // A failed spawn (ENOENT, EACCES) emits 'error' and no pid; lost() acts on the first call.
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return;
        this.lost(child, null, null, err);
        resolve();
      });
      // 'close' (all pipes drained) carries the last stderr line; a wrapper's leftover child
      // could hold a pipe open, so 'exit' decides after a moment on its own.
      let drained: (() => void) | null = null;
      child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
        const t = setTimeout(() => drained?.(), 300);
        drained = () => {
          drained = null;
          clearTimeout(t);
          this.lost(child, code, signal, null);
          resolve();
        };
      });
      child.once('close', () => drained?.());
    });
    child.stdin!.on('error', () => undefined); // EPIPE when it died; 'close' reports that
    child.stdout!.setEncoding('latin1').on('data', (d: string) => this.onData(d));
    child.stderr!.setEncoding('latin1').on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-400);
    });
  }

  /** Sends one command line (watch ranges). Dropped when the helper is not ready. */
  send(line: string): void {
    if (this.isReady && this.child?.stdin?.writable) this.child.stdin.write(line);
  }

  /** Stops it (SIGTERM, SIGKILL after 1 s) and waits for it to be gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelRespawn?.();
    this.cancelRespawn = null;
    const child = this.child;
    if (!child) return;
    child.stdin?.end();
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 1000);
    await this.exited;
    clearTimeout(kill);
  }

  private onData(chunk: string): void {
    const text = this.partial + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line === 's') this.on.stall();
      else if (line === 'm') this.on.mem();
      else if (line === 'e') {
        this.states.set('trigger', 'badwatch', `the PSI trigger helper ${this.spec.path} refused a meminfo watch (another version?); sampling meminfo every ${this.fallbackMemMs} ms`);
        this.on.badWatch();
      } else if ((line === 'ready' || line.startsWith('ready mem')) && !this.isReady) {
        this.isReady = true;
        this.readyAt = this.clock.now();
        const again = this.failures > 0 ? ' again' : '';
        const trigger = line === 'ready';
        if (trigger) this.states.set('trigger', 'ready', `PSI trigger helper running${again} (pid ${this.child?.pid}): stalls${this.spec.watchesMeminfo ? ' and meminfo changes' : ''} wake the agent, no polling`);
        else this.states.set('trigger', 'memonly', `PSI trigger helper running${again} (pid ${this.child?.pid}) without a trigger (${line.slice('ready mem'.length).trim() || 'refused'}): meminfo changes wake the agent; ${this.fallbackPsi}`);
        this.on.ready(trigger);
      }
    }
    this.partial = start < text.length ? text.slice(start).slice(-64) : '';
  }

  private lost(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, err: NodeJS.ErrnoException | null): void {
    if (this.child !== child) return;
    this.child = null;
    this.isReady = false;
    if (this.stopped) return;
    if (this.readyAt !== null && this.clock.now() - this.readyAt >= this.timing.stableMs) this.failures = 0;
    this.readyAt = null;
    const said = this.stderrTail.trim().split('\n').pop()?.replace(/^xmem-psi-trigger: /, '') ?? '';
    if (err) this.failed(`helper ${this.spec.path} cannot be run (${err.code ?? err.message})`, err.code === 'ENOENT' || err.code === 'EACCES');
    else if (code === EXIT_UNSUPPORTED) this.failed(said || 'trigger unsupported', true);
    else this.failed(`helper exited (${signal ?? `code ${code}`})${said ? `: ${said}` : ''}`, false);
  }

  private failed(why: string, permanent: boolean): void {
    if (permanent) {
      this.states.set('trigger', 'off', `PSI trigger unavailable: ${why}; ${this.fallback}`);
    } else {
      this.failures++;
      const wait = Math.min(this.timing.backoffMaxMs, this.timing.backoffMinMs * 2 ** Math.min(this.failures - 1, 20));
      this.states.set('trigger', 'down', `PSI trigger ${why}; ${this.fallback}; restarting it with backoff (now ${wait} ms, at most ${this.timing.backoffMaxMs} ms)`);
      this.cancelRespawn = this.clock.setTimer(wait, () => this.start());
    }
    this.on.down();
  }
}
