/**
 * Watch-event → target-written latency of the real Manager over the real C xenstored, with N
 * domains on a scripted host (Xen's hypercalls are the only thing not real). One sample: a
 * guest report that asks for more memory is written; the clock stops when a watch on that
 * VM's memory/target (on a third, independent connection) sees the manager's write.
 *
 * The peer measured in the same run is a bare reactor: on the same xenstored, with the same
 * client library, it watches a report key, reads it, parses the JSON and writes a target —
 * the least any balancer must do (one watch event, one read, one write). Its samples alternate
 * with the manager's, so both see the same machine; what the manager adds is the policy pass.
 * Called by bench/policy.ts; `_` keeps it out of the bench list.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { startXenstored } from '../test/peer/daemon.js';
import { realClock } from '../src/clock.js';
import { connectXenstore } from '../src/xenstore/client.js';
import type { WatchEvent, XenstoreClient } from '../src/xenstore/types.js';
import { encodeGuestReport, type GuestReport } from '../src/schemas/report.js';
import { parseConfig } from '../dom0/config.js';
import { ScriptedHost, followTargetWrites, proxyClient, type ScriptedDomain } from '../dom0/host/scripted-host.js';
import { Manager, type PassReport } from '../dom0/manager/manager.js';
import { keys } from '../dom0/manager/keys.js';
import { startStateServer, type StateServer } from '../dom0/state/server.js';

const MiB = 1024;
const GiB = 1024 * 1024;

/** One arrival pattern: reports every `spacingMs` (after the target is seen), `samples` of them. */
export interface ReactPattern {
  label: string;
  samples: number;
  spacingMs: number;
}

export interface ReactOptions {
  /** Samples taken first on the same manager and not counted (default 1500, at the busy pace).
   *  A service runs for weeks: V8 optimizes a function called once per pass only after hundreds
   *  of calls. The warm-up runs in the measured manager itself: warming a throw-away one and
   *  measuring a new one let the optimized code die with the old manager's objects (V8 drops
   *  code whose embedded objects died: `--trace-deopt` shows "weak objects" for decideXmem). */
  warmupSamples?: number;
  patterns: ReactPattern[];
}

/** The manager's pass interval for the whole run: samples are spaced beyond it, so none waits
 *  on it and a pass does the same work as under the default 100 ms. */
const MIN_PASS_INTERVAL_MS = 20;
const WARMUP_SPACING_MS = MIN_PASS_INTERVAL_MS + 5;
/** Each sample raises one VM's Committed_AS by this much (above every hysteresis threshold). */
const COMMIT_STEP_KIB = 512 * MiB;

function agentReport(seq: number, commitKib: number): GuestReport {
  const total = commitKib + 512 * MiB;
  return {
    v: 1, seq, up: seq * 1000, total, free: 64 * MiB, avail: 256 * MiB, buf: 8 * MiB, cache: 192 * MiB,
    afile: 96 * MiB, ifile: 96 * MiB, shmem: 4 * MiB, srec: 16 * MiB, sunrec: 16 * MiB, anon: commitKib - 64 * MiB,
    mlock: 0, swtot: 0, swfree: 0, commit: commitKib, bcur: total, btgt: total,
    psi: { s10: 0, s60: 0, s300: 0, stot: 0, f10: 0, f60: 0, f300: 0, ftot: 0 }, rfa: 0, rff: 0, swin: 0, swout: 0,
  };
}

/** Where the bare reactor works: a subtree no manager watches. */
const BARE = '/bench/bare';

/** The peer: watch → read → JSON.parse → write, on its own connection, nothing else. */
async function startBareReactor(socketPath: string): Promise<{ close(): Promise<void> }> {
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
  return { close: () => xs.close() };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** When the manager's side of one xmem sample happened (performance.now(), first of each). */
interface Marks {
  watch?: number;
  readStart?: number;
  readDone?: number;
  writeStart?: number;
  writeDone?: number;
}

/** Where one sample's time went, ms: report written → the manager's watch fires → its pass
 *  reads the report → decides → writes the target (→ acknowledged; → seen by the watcher). */
export interface Phases {
  delivery: number;
  toPass: number;
  read: number;
  decide: number;
  writeAck: number;
  writeSeen: number;
}

const PHASES: (keyof Phases)[] = ['delivery', 'toPass', 'read', 'decide', 'writeAck', 'writeSeen'];

function phasesOf(t0: number, seen: number, m: Marks): Phases | null {
  const { watch, readStart, readDone, writeStart, writeDone } = m;
  if (watch === undefined || readStart === undefined || readDone === undefined || writeStart === undefined || writeDone === undefined) return null;
  return { delivery: watch - t0, toPass: readStart - watch, read: readDone - readStart, decide: writeStart - readDone, writeAck: writeDone - writeStart, writeSeen: seen - writeStart };
}

/** Each phase's median over the samples given. */
function medianPhases(ps: Phases[]): Phases | null {
  if (ps.length === 0) return null;
  const out = {} as Phases;
  for (const k of PHASES) out[k] = quantile(ps.map((p) => p[k]).sort((a, b) => a - b), 0.5);
  return out;
}

/** The manager's client, timestamping the first watch event, read and write of each sample. */
function markedClient(xs: XenstoreClient, marks: () => Marks): XenstoreClient {
  const now = () => performance.now();
  return proxyClient(xs, {
    watch: (path, handler) => xs.watch(path, (ev) => {
      marks().watch ??= now();
      handler(ev);
    }),
    tryRead: async (path, tx) => {
      const m = marks();
      m.readStart ??= now();
      const v = await xs.tryRead(path, tx);
      m.readDone ??= now();
      return v;
    },
    write: async (path, value, tx) => {
      const m = marks();
      m.writeStart ??= now();
      await xs.write(path, value, tx);
      m.writeDone ??= now();
    },
  });
}

async function setupDomains(xs: XenstoreClient, doms: ScriptedDomain[], staticMaxKib: number): Promise<void> {
  await Promise.all(doms.map(async (d) => {
    const k = keys(d.domid);
    await xs.write(`${k.home}/name`, d.name);
    await xs.write(k.staticMax, String(staticMaxKib));
    await xs.write(k.target, String(d.actualKib));
  }));
}

export interface ReactResult {
  label: string;
  p50Ms: number;
  p99Ms: number;
  /** The bare reactor's latency over the same daemon, samples interleaved with the manager's. */
  bareP50Ms: number;
  bareP99Ms: number;
  /** The manager's own pass time over the same samples (watch delivery and scheduling excluded):
   *  tells the code's cost from a loaded machine's stalls. */
  passP50Ms: number;
  passP99Ms: number;
  /** Where the time went: each phase's median over all xmem samples, and over the slowest 1 %
   *  (those at or above the p99), to tell the pass's own work from the round trips. */
  phasesP50: Phases | null;
  phasesTail: Phases | null;
  /** 1-minute load average when the pattern ended (the figures mean little on a busy host). */
  load1: number;
}

/** Measures every pattern in turn on one daemon and one manager, after the warm-up. */
export async function measureReactLatency(n: number, opts: ReactOptions): Promise<ReactResult[]> {
  const warmup = opts.warmupSamples ?? 1500;
  for (const p of opts.patterns) {
    if (p.spacingMs < WARMUP_SPACING_MS) throw new Error(`${p.label}: spacing ${p.spacingMs} ms is below the manager's ${MIN_PASS_INTERVAL_MS} ms pass interval`);
  }
  const totalSamples = warmup + opts.patterns.reduce((s, p) => s + p.samples, 0);
  // Every sample grows one VM by a step: the ceilings leave room for all of them.
  const ceilingKib = Math.max(64 * GiB, 1 * GiB + (Math.ceil(totalSamples / n) + 2) * COMMIT_STEP_KIB);
  const daemon = await startXenstored({ impl: 'c' });
  const tools = await connectXenstore({ path: daemon.socketPath });
  const watcher = await connectXenstore({ path: daemon.socketPath });
  const managerXs = await connectXenstore({ path: daemon.socketPath });
  let manager: Manager | null = null;
  let bare: { close(): Promise<void> } | null = null;
  let stateServer: StateServer | null = null;
  try {
    const doms: ScriptedDomain[] = [{ domid: 0, name: 'Domain-0', actualKib: 4 * GiB, maxmemKib: 4 * GiB + 1024 }];
    for (let i = 1; i <= n; i++) doms.push({ domid: i, name: `vm${i}`, actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024 });
    await setupDomains(tools, doms, ceilingKib);
    // Plenty of memory: every sample is a prompt grow, never a wait for a donor.
    const host = new ScriptedHost({ totalKib: (n + 8) * ceilingKib, domains: doms });
    // Marks of the sample under way (a bare-reactor sample's stay empty).
    let marks: Marks = {};
    manager = new Manager({
      xs: markedClient(followTargetWrites(managerXs, (d, k) => host.observeTarget(d, k)), () => marks),
      host,
      clock: realClock,
      // surplus: free → every target is the VM's ideal, so each larger report moves its target
      // (with `proportional` and this much memory every VM would sit at its ceiling).
      config: parseConfig({ surplus: 'free', service: { minPassIntervalMs: MIN_PASS_INTERVAL_MS, sweepIntervalMs: 3_600_000, convergePollMs: 60_000 } }),
      logger: pino({ level: 'silent' }),
    });
    let passes = 0;
    let measuring = false;
    let passMs: number[] = [];
    manager.on('pass', (p: PassReport) => {
      passes++;
      if (measuring && p.changes.length > 0) passMs.push(p.durationMs);
    });
    await manager.start();
    // The state server (xmem top's stream, /metrics) as `xmem run` attaches it: it costs every pass.
    stateServer = await startStateServer(manager, { socketPath: `${daemon.socketPath}.state` });
    // Let discovery and the initial passes settle.
    for (let quiet = 0, last = -1; quiet < 3; ) {
      await new Promise((r) => setTimeout(r, 150));
      quiet = passes === last ? quiet + 1 : 0;
      last = passes;
    }

    // One watch per VM target on an independent connection; resolvers keyed by path.
    const waiting = new Map<string, (t: number) => void>();
    const onTarget = (ev: WatchEvent) => {
      const t = performance.now();
      const resolve = waiting.get(ev.path);
      if (resolve) {
        waiting.delete(ev.path);
        resolve(t);
      }
    };
    await Promise.all(doms.slice(1).map((d) => watcher.watch(keys(d.domid).target, onTarget)));
    await watcher.watch(BARE, onTarget);
    bare = await startBareReactor(daemon.socketPath);
    await new Promise((r) => setTimeout(r, 100)); // drain the initial watch events

    const commit = new Map<number, number>();
    let taken = 0;
    const sample = async (reportPath: string, targetPath: string, value: string, what: string, spacingMs: number): Promise<{ ms: number; phases: Phases | null }> => {
      const seen = new Promise<number>((resolve, reject) => {
        waiting.set(targetPath, resolve);
        setTimeout(() => reject(new Error(`${what}: no target written within 5 s`)), 5000).unref();
      });
      const m: Marks = {};
      marks = m;
      const t0 = performance.now();
      await tools.write(reportPath, value);
      const t1 = await seen;
      await new Promise((r) => setTimeout(r, spacingMs));
      return { ms: t1 - t0, phases: phasesOf(t0, t1, m) };
    };
    // One xmem sample then one bare-reactor sample, on the same VM number and report.
    const pair = async (spacingMs: number): Promise<[{ ms: number; phases: Phases | null }, number]> => {
      const i = taken++;
      const domid = 1 + (i % n);
      const c = (commit.get(domid) ?? 1 * GiB) + COMMIT_STEP_KIB;
      commit.set(domid, c);
      const report = encodeGuestReport(agentReport(i + 1, c));
      const xmem = await sample(keys(domid).report, keys(domid).target, report, `vm${domid} (sample ${i})`, spacingMs);
      const bare = await sample(`${BARE}/${domid}/report`, `${BARE}/${domid}/target`, report, `bare reactor (sample ${i})`, spacingMs);
      return [xmem, bare.ms];
    };
    for (let i = 0; i < warmup; i++) await pair(WARMUP_SPACING_MS);

    const results: ReactResult[] = [];
    for (const p of opts.patterns) {
      const bareLat: number[] = [];
      const timed: { ms: number; phases: Phases | null }[] = [];
      passMs = [];
      measuring = true;
      for (let i = 0; i < p.samples; i++) {
        const [xmem, bareMs] = await pair(p.spacingMs);
        timed.push(xmem);
        bareLat.push(bareMs);
      }
      measuring = false;
      const lat = timed.map((t) => t.ms);
      for (const xs of [lat, bareLat, passMs]) xs.sort((a, b) => a - b);
      const p99 = quantile(lat, 0.99);
      const phased = (keep: (ms: number) => boolean) => timed.flatMap((t) => (t.phases && keep(t.ms) ? [t.phases] : []));
      results.push({
        label: p.label,
        phasesP50: medianPhases(phased(() => true)),
        phasesTail: medianPhases(phased((ms) => ms >= p99)),
        p50Ms: quantile(lat, 0.5), p99Ms: p99,
        bareP50Ms: quantile(bareLat, 0.5), bareP99Ms: quantile(bareLat, 0.99),
        passP50Ms: quantile(passMs, 0.5), passP99Ms: quantile(passMs, 0.99),
        load1: os.loadavg()[0]!,
      });
    }
    return results;
  } finally {
    await bare?.close();
    await stateServer?.close();
    await manager?.stop();
    for (const c of [managerXs, watcher, tools]) await c.close().catch(() => {});
    await daemon.stop();
  }
}
