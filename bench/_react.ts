/**
 * Watch-event → target-written latency of the real Manager over the real C xenstored, with N
 * domains on a scripted host (Xen's hypercalls are the only thing not real). One sample: a
 * guest report that asks for more memory is written; the clock stops when a watch on that
 * VM's memory/target (on an independent connection) sees the manager's write.
 *
 * Separate processes, as on a real host: this driver (the guests: it writes the reports and
 * watches the targets), the manager, and the peers. The peers measured in the same run are bare
 * reactors: on the same xenstored each watches a report key, reads it, parses the JSON and
 * writes a target — the least any balancer must do (one watch event, one read, one write). One
 * is in Node with xmem's client library, one in C with no runtime (bench/native). Their samples
 * alternate with the manager's, so all see the same machine; what the manager adds is the
 * policy pass. Then the floor: a C driver against the C reactor, nothing in Node on the path.
 * Times are CLOCK_MONOTONIC, shared by the processes; the manager logs its side of each
 * sample and hands the log over at the end.
 * Called by bench/policy.ts through bench/_react-main.ts; `_` keeps it out of the bench list.
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { constants as perfConstants } from 'node:perf_hooks';
import os from 'node:os';
import { startXenstored } from '../test/peer/daemon.js';
import { connectXenstore } from '../src/xenstore/client.js';
import type { WatchEvent, XenstoreClient } from '../src/xenstore/types.js';
import { encodeGuestReport, type GuestReport } from '../src/schemas/report.js';
import type { ScriptedDomain } from '../dom0/host/scripted-host.js';
import { keys } from '../dom0/manager/keys.js';
import { toFifo } from '../dom0/manager/realtime.js';
import { BARE, NATIVE_BARE, MIN_PASS_INTERVAL_MS, STRIDE, monoMs, type ManagerChildSpec, type ManagerLog } from './_react-peers.js';

const { NODE_PERFORMANCE_GC_MINOR } = perfConstants;
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
  /** The script to fork for the manager and the bare reactor (bench/_react-main.ts, bundled). */
  childScript: string;
  /** bench/native/bare-reactor.c, built: the same bare reactor in C, a third peer (no
   *  runtime, no event loop on the reactor's side). Absent: not measured. */
  nativeReactor?: string;
  /** bench/native/floor-driver.c, built: after the interleaved samples, each pattern is run
   *  again with this C driver against the C reactor, so no runtime is on the path at all. */
  floorDriver?: string;
  /** xenstored and each reactor's main thread (xmem's manager, both bare reactors) at
   *  SCHED_FIFO priority 1, as `xmem run` puts its own with service.fifoPriority = 1 and
   *  dom0/systemd/xenstored-fifo.conf puts xenstored (`--fifo`). The driver, which plays the guests, stays at SCHED_OTHER. */
  fifo?: boolean;
  /** The manager's service.gcBetweenPasses (default true). The manager runs under --expose-gc
   *  either way, as the systemd unit starts it. */
  gcBetweenPasses?: boolean;
}

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

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
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

/** One xmem sample as the driver timed it. */
interface Sample {
  domid: number;
  t0: number;
  seen: number;
}

/** The first entry for `domid` starting within [from, to] (entries in time order, `stride`
 *  numbers each: domid, start, …), as its numbers after the domid; null if none. */
function firstOf(entries: number[], stride: number, domid: number, from: number, to: number): number[] | null {
  for (let i = 0; i < entries.length; i += stride) {
    if (entries[i] === domid && entries[i + 1]! >= from && entries[i + 1]! <= to) return entries.slice(i + 1, i + stride);
  }
  return null;
}

/** Matches each sample with the manager's log: its watch event, report read and target write. */
function phasesOf(s: Sample, log: ManagerLog): Phases | null {
  const watch = firstOf(log.watches, STRIDE.watches, s.domid, s.t0, s.seen);
  const read = watch && firstOf(log.reads, STRIDE.reads, s.domid, watch[0]!, s.seen);
  const write = read && firstOf(log.writes, STRIDE.writes, s.domid, read[1]!, s.seen);
  if (!watch || !read || !write) return null;
  return {
    delivery: watch[0]! - s.t0, toPass: read[0]! - watch[0]!, read: read[1]! - read[0]!,
    decide: write[0]! - read[1]!, writeAck: write[1]! - write[0]!, writeSeen: s.seen - write[0]!,
  };
}

/** When the manager sent this sample's target write (its log matched), else null. */
function writeSentAt(s: Sample, log: ManagerLog): number | null {
  const ph = phasesOf(s, log);
  return ph && s.seen - ph.writeSeen;
}

/** The kind (perf_hooks' flags) of the first of the manager's GC pauses overlapping
 *  [from, to], or null. */
function gcWithin(log: ManagerLog, from: number, to: number): number | null {
  for (let i = 0; i < log.gcs.length; i += STRIDE.gcs) {
    if (log.gcs[i]! < to && log.gcs[i]! + log.gcs[i + 1]! > from) return log.gcs[i + 2]!;
  }
  return null;
}

/** Median growth of the young generation from one pass's end to the next (growth a
 *  collection interrupted is left out): about what one pass allocates. */
function allocPerPassKib(youngUsed: number[]): number | null {
  const growth: number[] = [];
  for (let i = 1; i < youngUsed.length; i++) if (youngUsed[i]! >= youngUsed[i - 1]!) growth.push(youngUsed[i]! - youngUsed[i - 1]!);
  return growth.length === 0 ? null : quantile(growth.sort((a, b) => a - b), 0.5) / 1024;
}

/** Each phase's median over the samples given. */
function medianPhases(ps: Phases[]): Phases | null {
  if (ps.length === 0) return null;
  const out = {} as Phases;
  for (const k of PHASES) out[k] = quantile(ps.map((p) => p[k]).sort((a, b) => a - b), 0.5);
  return out;
}

async function setupDomains(xs: XenstoreClient, doms: ScriptedDomain[], staticMaxKib: number): Promise<void> {
  await Promise.all(doms.map(async (d) => {
    const k = keys(d.domid);
    await xs.write(`${k.home}/name`, d.name);
    await xs.write(k.staticMax, String(staticMaxKib));
    await xs.write(k.target, String(d.actualKib));
  }));
}

/** A forked reactor: resolves once it says it is ready; `finish()` asks for its last word. */
interface Peer {
  proc: ChildProcess;
  finished: boolean;
  finish(): Promise<unknown>;
}

async function startPeer(script: string, args: string[], nodeFlags: string[] = []): Promise<Peer> {
  const proc = fork(script, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...nodeFlags] });
  let finishing = false;
  proc.on('error', () => {}); // a send to a process already gone; its exit says the rest
  // A reactor that dies mid-run would only show as missing targets: say so at once.
  proc.on('exit', (code, signal) => {
    if (!finishing) process.stderr.write(`react bench: ${args[1]} process exited (${signal ?? code}) during the run\n`);
  });
  const next = () => new Promise<unknown>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${args.join(' ')}: exited (${code}) before answering`));
    proc.once('exit', onExit);
    proc.once('message', (m) => {
      proc.off('exit', onExit);
      resolve(m);
    });
  });
  await next();
  const peer: Peer = {
    proc,
    finished: false,
    finish: async () => {
      finishing = peer.finished = true;
      const answer = next();
      proc.send('finish');
      return answer;
    },
  };
  return peer;
}

function exitWithin(proc: ChildProcess, ms: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The C bare reactor: ready once it prints so; `finish()` closes its stdin and awaits its exit. */
async function startNativePeer(binary: string, socketPath: string): Promise<Peer> {
  const proc = spawn(binary, [socketPath, NATIVE_BARE], { stdio: ['pipe', 'pipe', 'inherit'] });
  let finishing = false;
  const exited = new Promise<void>((resolve) => proc.once('exit', (code, signal) => {
    if (!finishing) process.stderr.write(`react bench: native reactor exited (${signal ?? code}) during the run\n`);
    resolve();
  }));
  await new Promise<void>((resolve, reject) => {
    proc.once('error', reject);
    proc.stdout!.once('data', () => resolve());
    void exited.then(() => reject(new Error(`${binary}: exited before it was ready`)));
  });
  const peer: Peer = {
    proc,
    finished: false,
    finish: async () => {
      finishing = peer.finished = true;
      proc.stdin!.end();
      await exited;
      return null;
    },
  };
  return peer;
}

export interface ReactResult {
  label: string;
  p50Ms: number;
  p99Ms: number;
  /** The bare reactor's latency over the same daemon, samples interleaved with the manager's. */
  bareP50Ms: number;
  bareP99Ms: number;
  /** The C bare reactor's, likewise; null when it was not built. */
  nativeP50Ms: number | null;
  nativeP99Ms: number | null;
  /** C driver → C reactor, same pattern, run after the others: the machine's floor. */
  floor: { p50Ms: number; p99Ms: number; maxMs: number } | null;
  /** The manager's own pass time over the same samples (watch delivery and scheduling excluded):
   *  tells the code's cost from a loaded machine's stalls. */
  passP50Ms: number;
  passP99Ms: number;
  /** The interval taken literally, on the manager's own clock: its report watch fired →
   *  xenstored acknowledged its target write (no watch delivery to or from the driver). Over
   *  the samples the log matched; null when none did. */
  watchToAckP50Ms: number | null;
  watchToAckP99Ms: number | null;
  /** Where the time went: each phase's median over all xmem samples, and over the slowest 1 %
   *  (those at or above the p99), to tell the pass's own work from the round trips. */
  phasesP50: Phases | null;
  phasesTail: Phases | null;
  /** The manager's collector ('on', or why it is off: gc-between-passes.ts). */
  gcBetweenPasses: string;
  /** Share of xmem samples with one of the manager's GC pauses between the report's write and
   *  the target's (the manager's write sent), %. */
  gcInSamplePct: number;
  /** Of those, the samples whose pause was a scavenge (the kind the collector moves), %. */
  minorGcInSamplePct: number;
  /** What one pass allocates (median young-generation growth between passes), KiB. */
  allocKibPerPass: number | null;
  /** 1-minute load average when the pattern ended (the figures mean little on a busy host). */
  load1: number;
}

/** Puts one thread (a process's main thread: its pid) at SCHED_FIFO 1, as `xmem run` does
 *  with service.fifoPriority = 1, or says why it could not. */
async function fifoOrThrow(pid: number | undefined, what: string): Promise<void> {
  const status = pid === undefined ? 'off: no pid' : await toFifo(pid, 1);
  if (status.startsWith('off')) throw new Error(`--fifo: ${what}: ${status}`);
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
  if (opts.fifo) await fifoOrThrow(daemon.pid(), 'xenstored');
  const tools = await connectXenstore({ path: daemon.socketPath });
  const watcher = await connectXenstore({ path: daemon.socketPath });
  const peers: Peer[] = [];
  try {
    const doms: ScriptedDomain[] = [{ domid: 0, name: 'Domain-0', actualKib: 4 * GiB, maxmemKib: 4 * GiB + 1024 }];
    for (let i = 1; i <= n; i++) doms.push({ domid: i, name: `vm${i}`, actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024 });
    await setupDomains(tools, doms, ceilingKib);
    // Plenty of memory: every sample is a prompt grow, never a wait for a donor.
    const spec: ManagerChildSpec = { socketPath: daemon.socketPath, domains: doms, totalKib: (n + 8) * ceilingKib, gcBetweenPasses: opts.gcBetweenPasses ?? true };
    // NODE_OPTIONS=--expose-gc, as dom0/systemd/xmem.service runs the service.
    const manager = await startPeer(opts.childScript, ['--role', 'manager', '--spec', JSON.stringify(spec)], ['--expose-gc']);
    peers.push(manager);
    const bare = await startPeer(opts.childScript, ['--role', 'bare', '--socket', daemon.socketPath]);
    peers.push(bare);
    const native = opts.nativeReactor ? await startNativePeer(opts.nativeReactor, daemon.socketPath) : null;
    if (native) peers.push(native);
    // Main threads only (chrt --pid sets one thread): V8's helper threads stay at SCHED_OTHER,
    // as in `xmem run` (dom0/manager/realtime.ts).
    if (opts.fifo) for (const [peer, what] of [[manager, 'manager'], [bare, 'bare reactor'], [native, 'C reactor']] as const) if (peer) await fifoOrThrow(peer.proc.pid, what);

    // One watch per VM target on an independent connection; resolvers keyed by path.
    const waiting = new Map<string, (t: number) => void>();
    const onTarget = (ev: WatchEvent) => {
      const t = monoMs();
      const resolve = waiting.get(ev.path);
      if (resolve) {
        waiting.delete(ev.path);
        resolve(t);
      }
    };
    await Promise.all(doms.slice(1).map((d) => watcher.watch(keys(d.domid).target, onTarget)));
    await watcher.watch(BARE, onTarget);
    if (native) await watcher.watch(NATIVE_BARE, onTarget);
    await new Promise((r) => setTimeout(r, 100)); // drain the initial watch events

    const commit = new Map<number, number>();
    let taken = 0;
    const sample = async (reportPath: string, targetPath: string, value: string, what: string, spacingMs: number): Promise<{ t0: number; seen: number }> => {
      const seen = new Promise<number>((resolve, reject) => {
        waiting.set(targetPath, resolve);
        setTimeout(() => reject(new Error(`${what}: no target written within 5 s`)), 5000).unref();
      });
      const t0 = monoMs();
      await tools.write(reportPath, value);
      const t1 = await seen;
      await new Promise((r) => setTimeout(r, spacingMs));
      return { t0, seen: t1 };
    };
    // One xmem sample then one sample of each bare reactor, on the same VM number and report.
    const round = async (spacingMs: number): Promise<[Sample, number, number | null]> => {
      const i = taken++;
      const domid = 1 + (i % n);
      const c = (commit.get(domid) ?? 1 * GiB) + COMMIT_STEP_KIB;
      commit.set(domid, c);
      const report = encodeGuestReport(agentReport(i + 1, c));
      const xmem = await sample(keys(domid).report, keys(domid).target, report, `vm${domid} (sample ${i})`, spacingMs);
      const b = await sample(`${BARE}/${domid}/report`, `${BARE}/${domid}/target`, report, `bare reactor (sample ${i})`, spacingMs);
      const nat = native ? await sample(`${NATIVE_BARE}/${domid}/report`, `${NATIVE_BARE}/${domid}/target`, report, `native reactor (sample ${i})`, spacingMs) : null;
      return [{ domid, ...xmem }, b.seen - b.t0, nat && nat.seen - nat.t0];
    };
    for (let i = 0; i < warmup; i++) await round(WARMUP_SPACING_MS);

    const runs: { p: ReactPattern; timed: Sample[]; bareLat: number[]; nativeLat: number[]; load1: number }[] = [];
    for (const p of opts.patterns) {
      const run = { p, timed: [] as Sample[], bareLat: [] as number[], nativeLat: [] as number[], load1: 0 };
      for (let i = 0; i < p.samples; i++) {
        const [xmem, bareMs, nativeMs] = await round(p.spacingMs);
        run.timed.push(xmem);
        run.bareLat.push(bareMs);
        if (nativeMs !== null) run.nativeLat.push(nativeMs);
      }
      run.load1 = os.loadavg()[0]!;
      runs.push(run);
    }
    // The manager's log, handed over once nothing is measured any more.
    const { log, gcBetweenPasses } = (await manager.finish()) as { log: ManagerLog; gcBetweenPasses: string };
    const floors = new Map<ReactPattern, ReactResult['floor']>();
    if (native && opts.floorDriver) {
      await watcher.close(); // its watch on the C reactor's subtree would wake this process
      for (const p of opts.patterns) {
        const { stdout } = await promisify(execFile)(opts.floorDriver, [daemon.socketPath, NATIVE_BARE, String(p.samples), String(p.spacingMs)]);
        floors.set(p, JSON.parse(stdout) as NonNullable<ReactResult['floor']>);
      }
    }
    return runs.map(({ p, timed, bareLat, nativeLat, load1 }) => {
      const lat = timed.map((t) => t.seen - t.t0).sort((a, b) => a - b);
      bareLat.sort((a, b) => a - b);
      nativeLat.sort((a, b) => a - b);
      const from = timed[0]!.t0;
      const to = timed[timed.length - 1]!.seen;
      const passMs: number[] = [];
      for (let i = 0; i < log.passes.length; i += STRIDE.passes) {
        if (log.passes[i]! >= from && log.passes[i]! <= to) passMs.push(log.passes[i + 1]!);
      }
      passMs.sort((a, b) => a - b);
      const p99 = quantile(lat, 0.99);
      const gcKinds = timed.map((t) => gcWithin(log, t.t0, writeSentAt(t, log) ?? t.seen));
      const pct = (k: number) => (100 * k) / timed.length;
      const phased = (keep: (ms: number) => boolean) => timed.flatMap((t) => {
        const ph = keep(t.seen - t.t0) ? phasesOf(t, log) : null;
        return ph ? [ph] : [];
      });
      const all = phased(() => true);
      const watchToAck = all.map((ph) => ph.toPass + ph.read + ph.decide + ph.writeAck).sort((a, b) => a - b);
      return {
        label: p.label,
        phasesP50: medianPhases(all),
        phasesTail: medianPhases(phased((ms) => ms >= p99)),
        p50Ms: quantile(lat, 0.5), p99Ms: p99,
        bareP50Ms: quantile(bareLat, 0.5), bareP99Ms: quantile(bareLat, 0.99),
        nativeP50Ms: native ? quantile(nativeLat, 0.5) : null, nativeP99Ms: native ? quantile(nativeLat, 0.99) : null,
        floor: floors.get(p) ?? null,
        passP50Ms: quantile(passMs, 0.5), passP99Ms: quantile(passMs, 0.99),
        watchToAckP50Ms: watchToAck.length > 0 ? quantile(watchToAck, 0.5) : null,
        watchToAckP99Ms: watchToAck.length > 0 ? quantile(watchToAck, 0.99) : null,
        gcBetweenPasses,
        // Only a pause before the write was sent delays it (one right after the pass, while the
        // write is on its way to the watcher, does not).
        gcInSamplePct: pct(gcKinds.filter((k) => k !== null).length),
        minorGcInSamplePct: pct(gcKinds.filter((k) => k === NODE_PERFORMANCE_GC_MINOR).length),
        allocKibPerPass: allocPerPassKib(log.youngUsed),
        load1,
      };
    });
  } finally {
    for (const peer of peers) {
      if (!peer.finished && peer.proc.connected) await peer.finish().catch(() => {});
      // A finished child exits by itself (writing its profile under `node --cpu-prof`);
      // one that has not within 5 s is killed.
      await exitWithin(peer.proc, 5000);
      peer.proc.kill();
    }
    for (const c of [watcher, tools]) await c.close().catch(() => {});
    await daemon.stop();
  }
}
