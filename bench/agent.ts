/**
 * `npm run bench -- agent [--seconds 60] [--trials 10] [--no-hog] [--psi-trigger off] [--psi-interval <dur>]`
 *
 * The guest agent as systemd runs it (the esbuild bundle, the unit's node flags, and the native
 * helper xmem-psi-trigger built by domU-agent/native/build.sh beside the bundle, found there as
 * in an install) against the real C xenstored, beside an empty Node process with the same flags:
 *  - steady window: anonymous memory (smaps_rollup), RSS and CPU (schedstat run time, all
 *    threads) of the agent plus its helper, on this machine's real /proc, and how often the
 *    agent's main thread woke (voluntary context switches);
 *  - stall → report, scripted: a second agent reads a scripted proc tree whose stall total the
 *    bench grows; with the helper, a scripted helper (same protocol, fed by the bench) sends
 *    the trigger event at that moment. Timed on an independent dom0 connection's watch;
 *  - where a memory cgroup can be made, a real memory hog (a 64 MiB cgroup thrashing a 128 MiB
 *    file) with the agent and the real helper on the real /proc: time from the first growth of
 *    the real PSI total (polled by the bench every ms) to the report carrying it.
 * `--psi-trigger off` measures the agent without the helper (polling), as before it existed.
 * Where root lacks CAP_SYS_RESOURCE (this development machine), the helper runs in a user
 * namespace (unshare -U -r), which has it, as a guest's root does: a 500 ms trigger window needs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseGuestReport } from '../src/schemas/report.js';
import { connectXenstore, type XenstoreConnection } from '../src/xenstore/client.js';
import { startXenstored, type PeerDaemon } from '../test/peer/daemon.js';
import { buildAgentBundle } from '../test/agent/bundle.js';
import { buildHelper, CgroupHog, hasSysResource } from '../test/agent/native.js';

/** The systemd unit's node flags (domU-agent/xmem-agent.service). */
const NODE_FLAGS = ['--jitless', '--max-semi-space-size=1', '--max-old-space-size=32'];
const KEY = '/local/domain/0/data/xmem';
const HELPER = 'xmem-psi-trigger';

interface Mem {
  anonKib: number;
  rssKib: number;
}

function memOf(pid: number): Mem {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { anonKib: get('Anonymous'), rssKib: get('Rss') };
}

/** CPU time (ns) the process has run, all threads: schedstat's first field per task. */
function cpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSafe(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      // thread exited meanwhile
    }
  }
  return total;
}

/** Times the main thread went to sleep and was woken (each wake-up of the event loop). */
function wakes(pid: number): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'latin1'))?.[1] ?? NaN);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function psiText(avg10: number, avg60: number, avg300: number, total: number): string {
  const f = (n: number) => n.toFixed(2);
  return `some avg10=${f(avg10)} avg60=${f(avg60)} avg300=${f(avg300)} total=${total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`;
}

/**
 * Rewrites the scripted PSI file in place as one pwrite of a fixed size (padded with blank
 * lines, which the parser skips), so the agent in another process never reads it half-written.
 */
function writePsi(file: string, text: string): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.from(text.padEnd(PSI_FILE_BYTES, '\n'), 'latin1'), 0, PSI_FILE_BYTES, 0);
  } finally {
    closeSync(fd);
  }
}
const PSI_FILE_BYTES = 256;
/** The hog's cgroup limit and the file it thrashes (twice the limit: constant refaults). */

interface Proc {
  child: ChildProcess;
  stderr: string[];
  /** The helper's pid, once the agent logged it running. */
  helperPid(): number | null;
}

function spawnNode(args: string[]): Proc {
  const stderr: string[] = [];
  const child = spawn(process.execPath, [...NODE_FLAGS, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: '2' } });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const helperPid = () => {
    const all = stderr.join('');
    const m = [...all.matchAll(/PSI trigger helper running(?: again)? \(pid (\d+)\)/g)].at(-1);
    const down = all.lastIndexOf('PSI trigger helper exited');
    return m && (down < 0 || all.lastIndexOf(m[0]) > down) ? Number(m[1]) : null;
  };
  return { child, stderr, helperPid };
}

async function until<T>(f: () => T | null | undefined | false, ms: number): Promise<T | null> {
  for (const deadline = performance.now() + ms; performance.now() < deadline; await sleep(10)) {
    const v = f();
    if (v) return v;
  }
  return null;
}

/** Every report dom0 sees on `watcher`, with the time its watch event arrived. */
async function reportLog(watcher: XenstoreConnection): Promise<{ seen: { t: number; stot: number }[]; stop: () => Promise<void> }> {
  const seen: { t: number; stot: number }[] = [];
  const unwatch = await watcher.watch(KEY, () => {
    const t = performance.now();
    void watcher.tryRead(KEY).then((raw) => {
      const r = raw === null ? null : parseGuestReport(raw);
      if (r?.ok) seen.push({ t, stot: r.value.psi?.stot ?? -1 });
    });
  });
  return { seen, stop: unwatch };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A scripted helper: says ready, then forwards what the bench writes to its FIFO. */
function scriptedHelper(dir: string): { path: string; emit: (line: string) => void; close: () => void } {
  const fifo = path.join(dir, 'events');
  spawnSync('mkfifo', [fifo]);
  const file = path.join(dir, 'scripted-helper');
  writeFileSync(file, `#!/bin/sh\nexec 3<&0\ncat <&3 >/dev/null &\necho ready\nexec cat ${JSON.stringify(fifo)}\n`, { mode: 0o755 });
  let fd: number | null = null;
  return {
    path: file,
    emit: (line) => {
      fd ??= openSync(fifo, 'r+'); // read-write: never blocks
      writeSync(fd, line);
    },
    close: () => {
      if (fd !== null) closeSync(fd);
      fd = null;
    },
  };
}

/**
 * Puts the real helper beside the bundle, as an install does, so the agent finds it by itself.
 * Without CAP_SYS_RESOURCE, what is put there is a wrapper that runs it in a user namespace.
 */
function installHelper(bundleDir: string): string {
  const built = buildHelper();
  if ('skip' in built) return `not built (${built.skip}): the agent polls`;
  const bin = path.join(bundleDir, `${HELPER}.bin`);
  copyFileSync(built.path, bin);
  rmSync(path.dirname(built.path), { recursive: true, force: true });
  if (hasSysResource()) {
    copyFileSync(bin, path.join(bundleDir, HELPER));
    spawnSync('chmod', ['755', path.join(bundleDir, HELPER)]);
    return 'beside the bundle';
  }
  writeFileSync(path.join(bundleDir, HELPER), `#!/bin/sh\nexec unshare -U -r ${JSON.stringify(bin)} "$@"\n`, { mode: 0o755 });
  return 'beside the bundle, run in a user namespace (unshare -U -r) because this root lacks CAP_SYS_RESOURCE';
}

export default async function agentBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '60' },
      trials: { type: 'string', default: '10' },
      'no-hog': { type: 'boolean' },
      /** off: the agent without its helper (it polls). */
      'psi-trigger': { type: 'string' },
      /** Passed to the agent: e.g. 0 to measure the mode without the stall fast path. */
      'psi-interval': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const trials = Number(values.trials);
  const triggerOff = values['psi-trigger'] === 'off';
  if (!(seconds > 0) || !(trials > 0) || (values['psi-trigger'] !== undefined && !triggerOff)) {
    process.stderr.write('usage: npm run bench -- agent [--seconds N] [--trials N] [--no-hog] [--psi-trigger off] [--psi-interval <dur>]\n');
    process.exit(2);
  }

  const bundle = await buildAgentBundle();
  const bundleDir = path.dirname(bundle);
  const helperWhere = triggerOff ? 'off (--psi-trigger off): the agent polls' : installHelper(bundleDir);
  const daemon = await startXenstored({ impl: 'c' });
  const watcher = await connectXenstore({ path: daemon.socketPath });
  const tree = mkdtempSync(path.join(os.tmpdir(), 'xmem-bench-proc-'));
  mkdirSync(path.join(tree, 'pressure'));
  for (const f of ['meminfo', 'vmstat', 'uptime']) symlinkSync(`/proc/${f}`, path.join(tree, f));
  const psiFile = path.join(tree, 'pressure/memory');
  let total = 5_000_000;
  writeFileSync(psiFile, psiText(1, 4, 1, total).padEnd(PSI_FILE_BYTES, '\n'));

  const agentArgs = [
    ...(values['psi-interval'] === undefined ? [] : ['--psi-interval', values['psi-interval']]),
    ...(triggerOff ? ['--psi-trigger', 'off'] : []),
  ];
  const started: Proc[] = [];
  const startAgent = (extra: string[]) => {
    const p = spawnNode([bundle, '--xenstore', daemon.socketPath, ...agentArgs, ...extra]);
    started.push(p);
    return p;
  };
  const stopAgent = async (p: Proc) => {
    p.child.kill('SIGTERM');
    await Promise.race([new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.once('exit', r))), sleep(3000)]);
  };
  const log = await reportLog(watcher);
  try {
    // Steady window: the agent on this machine's real /proc, with its helper if there is one.
    const agent = startAgent([]);
    const floor = spawnNode(['-e', 'setInterval(() => {}, 1 << 30)']);
    started.push(floor);
    // Start-up is not part of the steady window: the first report, then V8's start-up GCs
    // (its memory reducer runs ~10 s after start) settle before measuring.
    await until(() => log.seen.length > 0, 10_000);
    await sleep(15_000);
    const helper = triggerOff ? null : agent.helperPid();
    const both = (f: (pid: number) => number) => f(agent.child.pid!) + (helper ? f(helper) : 0);
    const cpu0 = { agent: cpuNs(agent.child.pid!), helper: helper ? cpuNs(helper) : 0, floor: cpuNs(floor.child.pid!), wakes: wakes(agent.child.pid!), reports: log.seen.length, t: performance.now() };
    await sleep(seconds * 1000);
    const wall = (performance.now() - cpu0.t) * 1e6;
    const pct = (ns: number) => (ns / wall) * 100;
    const cpuAgent = pct(cpuNs(agent.child.pid!) - cpu0.agent);
    const cpuHelper = helper ? pct(cpuNs(helper) - cpu0.helper) : 0;
    const cpuFloor = pct(cpuNs(floor.child.pid!) - cpu0.floor);
    const agentWakes = wakes(agent.child.pid!) - cpu0.wakes;
    const steadyReports = log.seen.length - cpu0.reports;
    const mAgent = memOf(agent.child.pid!);
    const mHelper = helper ? memOf(helper) : { anonKib: 0, rssKib: 0 };
    const mFloor = memOf(floor.child.pid!);
    const anonKib = both((p) => memOf(p).anonKib);
    const rssKib = both((p) => memOf(p).rssKib);
    floor.child.kill('SIGTERM');
    await stopAgent(agent);

    // Stall → report, scripted: a scripted PSI total grows (and, with the helper, a scripted
    // helper sends the trigger event at that moment); timed on the independent watcher.
    const scriptedDir = mkdtempSync(path.join(os.tmpdir(), 'xmem-bench-helper-'));
    const stub = scriptedHelper(scriptedDir);
    const scriptedAgent = startAgent(['--proc-root', tree, '--heartbeat', '3600s', ...(triggerOff ? [] : ['--psi-trigger', stub.path])]);
    const scripted: number[] = [];
    try {
      await until(() => log.seen.length > cpu0.reports + steadyReports && (triggerOff || scriptedAgent.helperPid()), 10_000);
      await sleep(1500);
      for (let i = 0; i < trials; i++) {
        await sleep(1100 + Math.random() * 200); // past the 1 s stall gap, random phase vs the poll
        total += 50_000;
        const from = log.seen.length;
        const t0 = performance.now();
        writePsi(psiFile, psiText(2, 4, 1, total));
        if (!triggerOff) stub.emit('s\n');
        const hit = await until(() => log.seen.slice(from).find((x) => x.stot >= total), 5000);
        scripted.push(hit ? hit.t - t0 : NaN);
      }
    } finally {
      await stopAgent(scriptedAgent);
      stub.close();
      rmSync(scriptedDir, { recursive: true, force: true });
    }

    // Stall → report, a real memory hog in a cgroup, the agent and the real helper on /proc.
    let hog: number[] | string;
    const made = values['no-hog'] ? 'skipped (--no-hog)' : CgroupHog.create();
    if (typeof made === 'string') hog = made;
    else {
      hog = [];
      const hogFrom = log.seen.length;
      const hogAgent = startAgent(['--heartbeat', '3600s']);
      try {
        await until(() => log.seen.length > 0 && (triggerOff || hogAgent.helperPid()), 10_000);
        for (let i = 0; i < Math.min(trials, 5) && Array.isArray(hog); i++) {
          const bad = await made.ready();
          if (bad) {
            hog = bad;
            break;
          }
          // Setting the hog up stalled too: wait until the agent's last report is older than its
          // 1 s stall gap, so the trial times the fast path, not the rate limit.
          await until(() => performance.now() - (log.seen.at(-1)?.t ?? 0) > 1100, 15_000);
          const stall = await made.go();
          if (!stall) {
            hog = 'the hog produced no memory stall within 10 s';
            break;
          }
          const hit = await until(() => log.seen.slice(hogFrom).find((x) => x.stot > stall.base), 5000);
          hog.push(hit ? hit.t - stall.t0 : NaN);
          await made.stop();
        }
      } finally {
        await stopAgent(hogAgent);
        await made.dispose();
      }
    }

    const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
    const rows: [string, string, string, string][] = [
      ['anonymous memory (KiB)', String(mAgent.anonKib), helper ? String(mHelper.anonKib) : '-', String(mFloor.anonKib)],
      ['RSS (KiB)', String(mAgent.rssKib), helper ? String(mHelper.rssKib) : '-', String(mFloor.rssKib)],
      [`CPU % of one core (${seconds} s)`, fmt(cpuAgent, 3), helper ? fmt(cpuHelper, 3) : '-', fmt(cpuFloor, 3)],
      ['main-thread wake-ups', String(agentWakes), '', ''],
      ['reports written', String(steadyReports), '', ''],
    ];
    process.stdout.write(`\nxmem-agent (bundle, node ${process.version}, flags ${NODE_FLAGS.join(' ')}${agentArgs.length ? `, ${agentArgs.join(' ')}` : ''}) vs an empty node, same run\n`);
    process.stdout.write(`helper ${HELPER}: ${helperWhere}${!triggerOff && !helper ? ' — NOT RUNNING in the steady window, see the agent log below' : ''}\n`);
    process.stdout.write(`steady window: ${seconds} s on this machine's real /proc (load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
    process.stdout.write(`${'measure'.padEnd(30)}${'agent'.padStart(12)}${'helper'.padStart(10)}${'empty node'.padStart(14)}\n`);
    for (const [k, a, h, f] of rows) process.stdout.write(`${k.padEnd(30)}${a.padStart(12)}${h.padStart(10)}${f.padStart(14)}\n`);
    const how = triggerOff ? 'scripted PSI, stall poll' : 'scripted PSI and a scripted trigger event at the same moment';
    process.stdout.write(`\nstall → report in xenstore, ${how} (${trials} trials): median ${fmt(median(scripted))} ms, max ${fmt(Math.max(...scripted))} ms\n`);
    process.stdout.write(`  each: ${scripted.map((x) => fmt(x)).join(' ')}\n`);
    const hogHow = triggerOff ? 'stall poll' : 'real PSI trigger';
    if (typeof hog === 'string') process.stdout.write(`stall → report, real memory hog in a cgroup: ${hog}\n`);
    else process.stdout.write(`stall → report, real memory hog in a 64 MiB cgroup, ${hogHow} (${hog.length} trials, from the first growth of /proc/pressure/memory seen by a 1 ms poll): median ${fmt(median(hog))} ms, max ${fmt(Math.max(...hog))} ms\n  each: ${hog.map((x) => fmt(x)).join(' ')}\n`);
    const lines = started.flatMap((p) => p.stderr.join('').split('\n'));
    const errs = lines.filter((l) => /cannot|error|fatal|unavailable|exited/.test(l));
    if (errs.length) process.stdout.write(`agent log problems:\n${[...new Set(errs)].join('\n')}\n`);
    const stall = Math.max(...scripted, ...(typeof hog === 'string' ? [] : hog));
    process.stdout.write(
      `RESULT agent anon_kib=${anonKib} rss_kib=${rssKib} cpu_pct=${fmt(cpuAgent + cpuHelper, 3)} node_floor_anon_kib=${mFloor.anonKib} stall_to_report_ms=${fmt(stall)}\n`,
    );
  } finally {
    for (const p of started) p.child.kill('SIGKILL');
    await log.stop().catch(() => undefined);
    await watcher.close();
    await daemon.stop();
    rmSync(tree, { recursive: true, force: true });
    rmSync(bundleDir, { recursive: true, force: true });
  }
}
