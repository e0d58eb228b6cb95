/**
 * The two reactors of the react benchmark, each run in its own process (as in production,
 * where dom0's manager shares no event loop with the guests that write reports and watch
 * targets): the real Manager on a scripted host, and the bare reactor peer. Started by
 * bench/_react.ts through bench/_react-main.ts (`--role manager | bare`); they talk to the
 * driver over the fork IPC channel only before and after the measurement.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import pino from 'pino';
import { realClock } from '../src/clock.js';
import { REPORT_KEY } from '../src/schemas/report.js';
import { connectXenstore } from '../src/xenstore/client.js';
import type { XenstoreClient } from '../src/xenstore/types.js';
import { parseConfig } from '../dom0/config.js';
import { ScriptedHost, TARGET_PATH_RE, followTargetWrites, proxyClient, type ScriptedDomain } from '../dom0/host/scripted-host.js';
import { startGcBetweenPasses, youngGeneration } from '../dom0/manager/gc-between-passes.js';
import { Manager, type PassReport } from '../dom0/manager/manager.js';
import { startStateServer } from '../dom0/state/server.js';

/** CLOCK_MONOTONIC in ms: one clock for every process on the machine. */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The manager's pass interval for the whole run: samples are spaced beyond it, so none waits
 *  on it and a pass does the same work as under the default 100 ms. */
export const MIN_PASS_INTERVAL_MS = 20;

/** Where the bare reactor works: a subtree no manager watches. */
export const BARE = '/bench/bare';
/** Where the C bare reactor (bench/native/bare-reactor.c) works. */
export const NATIVE_BARE = '/bench/native';

/**
 * What the manager process saw, for the driver to match with its samples (by domid and time):
 * flat arrays of numbers, a stride per entry. The manager records them in Recorders, off the
 * V8 heap, so the measurement adds nothing for the measured process to promote and collect.
 */
export interface ManagerLog {
  /** A watch event on a VM's report key: domid, t. */
  watches: number[];
  /** A read of a VM's report key: domid, start, done. */
  reads: number[];
  /** A write of a VM's memory/target: domid, start, acknowledged. */
  writes: number[];
  /** Passes that changed a target: start, durationMs. */
  passes: number[];
  /** V8's collection pauses in the manager: start, durationMs, kind, flags (perf_hooks'
   *  constants: kind 1 minor, 4 major, 8 incremental marking, 16 weak callbacks; flag 4 forced). */
  gcs: number[];
  /** The young generation's use at the end of each pass, bytes (its growth: what a pass allocates). */
  youngUsed: number[];
}

/** Entries per kind of log line. */
export const STRIDE = { watches: 2, reads: 3, writes: 3, passes: 2, gcs: 4 } as const;

/** Numbers appended in chunks of Float64Array: their storage is outside the V8 heap. */
class Recorder {
  private readonly chunks: Float64Array[] = [];
  private used = CHUNK;

  push(...values: number[]): void {
    for (const v of values) {
      if (this.used === CHUNK) {
        this.chunks.push(new Float64Array(CHUNK));
        this.used = 0;
      }
      this.chunks[this.chunks.length - 1]![this.used++] = v;
    }
  }

  clear(): void {
    this.chunks.length = 0;
    this.used = CHUNK;
  }

  toArray(): number[] {
    const out: number[] = [];
    this.chunks.forEach((c, i) => out.push(...c.subarray(0, i === this.chunks.length - 1 ? this.used : CHUNK)));
    return out;
  }
}
const CHUNK = 4096;

type Recorders = { [K in keyof ManagerLog]: Recorder };

function toLog(r: Recorders): ManagerLog {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.toArray()])) as unknown as ManagerLog;
}

export interface ManagerChildSpec {
  socketPath: string;
  domains: ScriptedDomain[];
  totalKib: number;
  /** service.gcBetweenPasses (the process runs under --expose-gc, as the systemd unit sets). */
  gcBetweenPasses: boolean;
}

const REPORT = new RegExp(`^/local/domain/(\\d+)/${REPORT_KEY}$`);

/** The manager's client, logging each report watch event, report read and target write. */
function loggedClient(xs: XenstoreClient, log: Recorders): XenstoreClient {
  return proxyClient(xs, {
    watch: (path, handler) => xs.watch(path, (ev) => {
      const m = REPORT.exec(ev.path);
      if (m) log.watches.push(Number(m[1]), monoMs());
      handler(ev);
    }),
    tryRead: async (path, tx) => {
      const m = REPORT.exec(path);
      const start = monoMs();
      const v = await xs.tryRead(path, tx);
      if (m) log.reads.push(Number(m[1]), start, monoMs());
      return v;
    },
    write: async (path, value, tx) => {
      const m = TARGET_PATH_RE.exec(path);
      const start = monoMs();
      await xs.write(path, value, tx);
      if (m) log.writes.push(Number(m[1]), start, monoMs());
    },
  });
}

/** Sends to the driver; `then` runs once the message is written (a large log takes a while). */
function send(msg: unknown, then?: () => void): void {
  process.send!(msg, undefined, {}, () => then?.());
}

/** Runs the Manager with its state server (as `xmem run` attaches it) until the driver says finish. */
export async function runManagerChild(spec: ManagerChildSpec): Promise<void> {
  const xs = await connectXenstore({ path: spec.socketPath });
  const host = new ScriptedHost({ totalKib: spec.totalKib, domains: spec.domains });
  const log: Recorders = {
    watches: new Recorder(), reads: new Recorder(), writes: new Recorder(), passes: new Recorder(), gcs: new Recorder(), youngUsed: new Recorder(),
  };
  // performance's clock and CLOCK_MONOTONIC differ by an offset: taken once, at the start.
  const perfToMono = monoMs() - performance.now();
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as { detail?: { kind?: number; flags?: number } }).detail;
      log.gcs.push(perfToMono + e.startTime, e.duration, detail?.kind ?? 0, detail?.flags ?? 0);
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const manager = new Manager({
    xs: loggedClient(followTargetWrites(xs, (d, k) => host.observeTarget(d, k)), log),
    host,
    clock: realClock,
    // surplus: free → every target is the VM's ideal, so each larger report moves its target
    // (with `proportional` and this much memory every VM would sit at its ceiling).
    config: parseConfig({
      surplus: 'free',
      service: { minPassIntervalMs: MIN_PASS_INTERVAL_MS, sweepIntervalMs: 3_600_000, convergePollMs: 60_000, gcBetweenPasses: spec.gcBetweenPasses },
    }),
    logger: pino({ level: 'silent' }),
  });
  let passes = 0;
  manager.on('pass', (p: PassReport) => {
    passes++;
    if (p.changes.length > 0) log.passes.push(monoMs() - p.durationMs, p.durationMs);
    log.youngUsed.push(youngGeneration().usedBytes);
  });
  // As `xmem run` starts it (after the listener above, which reads the young generation first).
  const collector = startGcBetweenPasses(manager, spec.gcBetweenPasses);
  await manager.start();
  const stateServer = await startStateServer(manager, { socketPath: `${spec.socketPath}.state` });
  // Let discovery and the initial passes settle.
  for (let quiet = 0, last = -1; quiet < 3; ) {
    await new Promise((r) => setTimeout(r, 150));
    quiet = passes === last ? quiet + 1 : 0;
    last = passes;
  }
  for (const entries of Object.values(log)) entries.clear();
  process.once('message', () => {
    void (async () => {
      await stateServer.close();
      collector.stop();
      gcObserver.disconnect();
      await manager.stop();
      await xs.close().catch(() => {});
      send({ log: toLog(log), gcBetweenPasses: collector.status }, () => process.exit(0));
    })();
  });
  send({ ready: true });
}

/** The peer: watch → read → JSON.parse → write, on its own connection, nothing else. */
export async function runBareChild(socketPath: string): Promise<void> {
  const xs = await connectXenstore({ path: socketPath });
  const re = /^\/bench\/bare\/(\d+)\/report$/;
  await xs.watch(BARE, ({ path: p }) => {
    const m = re.exec(p);
    if (!m) return;
    void xs.read(p).then((raw) => {
      const r = JSON.parse(raw) as { commit: number };
      return xs.write(`${BARE}/${m[1]}/target`, String(r.commit));
    }).catch(() => {});
  });
  process.once('message', () => {
    void xs.close().catch(() => {}).then(() => {
      send({ done: true }, () => process.exit(0));
    });
  });
  send({ ready: true });
}
