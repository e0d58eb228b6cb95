/**
 * `npm run bench -- agent [--seconds 60] [--trials 10] [--no-hog] [--psi-interval <dur>]`
 *
 * The guest agent as systemd runs it (the esbuild bundle, the unit's node flags) against the
 * real C xenstored, beside an empty Node process with the same flags, measured in the same run:
 *  - anonymous memory (smaps_rollup), RSS and CPU (schedstat run time) over a steady window
 *    with a live PSI source (a scripted pressure file the bench rewrites every second, averages
 *    moving, no new stall; meminfo/vmstat/uptime are the machine's own through symlinks);
 *  - stall → report: the bench grows the scripted stall total and times, on an independent dom0
 *    connection's watch, the report carrying it landing in xenstore;
 *  - where a memory cgroup can be made, a real memory hog (a 64 MiB cgroup thrashing a 128 MiB
 *    file) with the agent on the real /proc: time from the first growth of the real PSI total
 *    (polled by the bench every ms) to the report carrying it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, rmdirSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseGuestReport } from '../src/schemas/report.js';
import { connectXenstore, type XenstoreConnection } from '../src/xenstore/client.js';
import { startXenstored, type PeerDaemon } from '../test/peer/daemon.js';
import { buildAgentBundle } from '../test/agent/bundle.js';

/** The systemd unit's node flags (domU-agent/xmem-agent.service). */
const NODE_FLAGS = ['--jitless', '--max-semi-space-size=1', '--max-old-space-size=32'];
const KEY = '/local/domain/0/data/xmem';

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
const HOG_LIMIT_MIB = 64;
const HOG_FILE_MIB = 128;

function spawnNode(args: string[], stderr: string[]): ChildProcess {
  const c = spawn(process.execPath, [...NODE_FLAGS, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: '2' } });
  c.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  return c;
}

/** Resolves with the time (performance.now) the report carrying stot ≥ `minTotal` is seen by `watcher`. */
function reportLanding(watcher: XenstoreConnection, minTotal: number): { promise: Promise<number>; cancel: () => void } {
  let unwatch: (() => Promise<void>) | null = null;
  let done = false;
  const promise = new Promise<number>((resolve) => {
    void watcher
      .watch(KEY, () => {
        const t = performance.now();
        void watcher.tryRead(KEY).then((raw) => {
          if (done || raw === null) return;
          const r = parseGuestReport(raw);
          if (r.ok && r.value.psi && r.value.psi.stot >= minTotal) {
            done = true;
            resolve(t);
          }
        });
      })
      .then((u) => (unwatch = u));
  });
  return {
    promise,
    cancel: () => {
      done = true;
      void unwatch?.();
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function hogStalls(daemon: PeerDaemon, bundle: string, watcher: XenstoreConnection, trials: number, agentArgs: string[]): Promise<number[] | string> {
  const v1 = '/sys/fs/cgroup/memory';
  const v2 = '/sys/fs/cgroup';
  const name = `xmem-bench-${process.pid}`;
  let cg: string;
  let limitFile: string;
  if (existsSync(path.join(v1, 'memory.limit_in_bytes'))) {
    cg = path.join(v1, name);
    limitFile = 'memory.limit_in_bytes';
  } else if (existsSync(path.join(v2, 'cgroup.controllers')) && readFileSync(path.join(v2, 'cgroup.subtree_control'), 'latin1').includes('memory')) {
    cg = path.join(v2, name);
    limitFile = 'memory.max';
  } else {
    return 'no memory cgroup controller here';
  }
  if (!existsSync('/proc/pressure/memory')) return 'no /proc/pressure/memory';
  try {
    mkdirSync(cg);
    writeFileSync(path.join(cg, limitFile), String(HOG_LIMIT_MIB * 1024 * 1024));
  } catch (e) {
    return `cannot create a memory cgroup: ${(e as Error).message}`;
  }
  const file = path.join(os.tmpdir(), `xmem-bench-thrash-${process.pid}`);
  const stderr: string[] = [];
  const agent = spawnNode([bundle, '--xenstore', daemon.socketPath, '--heartbeat', '3600s', ...agentArgs], stderr);
  const hog = `
    const fs = require('fs');
    fs.writeFileSync(process.argv[1] + '.pid', String(process.pid));
    const f = process.argv[1];
    const size = Number(process.argv[2]) << 20, blk = Buffer.alloc(4096);
    const fd = fs.openSync(f, 'w+');
    for (let o = 0; o < size; o += 1 << 20) fs.writeSync(fd, require('crypto').randomBytes(1 << 20), 0, 1 << 20, o);
    process.send('ready');
    process.on('message', (m) => { if (m === 'go') for (;;) fs.readSync(fd, blk, 0, 4096, Math.floor(Math.random() * (size / 4096)) * 4096); });
  `;
  const out: number[] = [];
  try {
    await sleep(1500);
    for (let i = 0; i < trials; i++) {
      // The hog joins the cgroup before it allocates, so its page cache is charged there.
      const child = spawn(process.execPath, ['-e', hog, file, String(HOG_FILE_MIB)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
      writeFileSync(path.join(cg, 'cgroup.procs'), String(child.pid));
      const ready = await Promise.race([
        new Promise<string>((resolve) => child.once('message', () => resolve('ready'))),
        new Promise<string>((resolve) => child.once('exit', (code, sig) => resolve(`hog exited (${code ?? sig}) before it was ready`))),
        sleep(30_000).then(() => 'hog not ready within 30 s'),
      ]);
      if (ready !== 'ready') {
        child.kill('SIGKILL');
        return ready;
      }
      // Writing the file stalled too: wait for 1.2 s without stall growth (past the agent's 1 s
      // stall gap), so the trial starts from quiet.
      const readTotal = () => Number(/^some .* total=(\d+)/m.exec(readFileSync('/proc/pressure/memory', 'latin1'))![1]);
      let quietSince = performance.now();
      let last = readTotal();
      for (const giveUp = performance.now() + 20_000; performance.now() < giveUp && performance.now() - quietSince < 1200; ) {
        await sleep(50);
        const now = readTotal();
        if (now !== last) quietSince = performance.now();
        last = now;
      }
      const base = readTotal();
      child.send('go');
      // First growth of the real stall total, seen by a 1 ms poll.
      let t0 = 0;
      let total = base;
      const deadline = performance.now() + 10_000;
      while (performance.now() < deadline) {
        total = Number(/^some .* total=(\d+)/m.exec(readFileSync('/proc/pressure/memory', 'latin1'))![1]);
        if (total > base) {
          t0 = performance.now();
          break;
        }
        await sleep(1);
      }
      if (!t0) {
        child.kill('SIGKILL');
        return 'the hog produced no memory stall within 10 s';
      }
      const landing = reportLanding(watcher, total);
      const t1 = await Promise.race([landing.promise, sleep(5000).then(() => NaN)]);
      landing.cancel();
      child.kill('SIGKILL');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(2000)]);
      out.push(t1 - t0);
    }
  } finally {
    agent.kill('SIGTERM');
    rmSync(file, { force: true });
    rmSync(`${file}.pid`, { force: true });
    await sleep(200);
    try {
      rmdirSync(cg);
    } catch {
      // a straggler still inside; the kernel frees it when it exits
    }
  }
  return out;
}

export default async function agentBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '60' },
      trials: { type: 'string', default: '10' },
      'no-hog': { type: 'boolean' },
      /** Passed to the agent: e.g. 0 to measure the mode without the stall fast path. */
      'psi-interval': { type: 'string' },
    },
  });
  const seconds = Number(values.seconds);
  const trials = Number(values.trials);
  if (!(seconds > 0) || !(trials > 0)) {
    process.stderr.write('usage: npm run bench -- agent [--seconds N] [--trials N] [--no-hog]\n');
    process.exit(2);
  }

  const bundle = await buildAgentBundle();
  const daemon = await startXenstored({ impl: 'c' });
  const watcher = await connectXenstore({ path: daemon.socketPath });
  const tree = mkdtempSync(path.join(os.tmpdir(), 'xmem-bench-proc-'));
  mkdirSync(path.join(tree, 'pressure'));
  for (const f of ['meminfo', 'vmstat', 'uptime']) symlinkSync(`/proc/${f}`, path.join(tree, f));
  const psiFile = path.join(tree, 'pressure/memory');
  let total = 5_000_000;
  let avg10 = 12;
  writeFileSync(psiFile, psiText(avg10, 4, 1, total).padEnd(PSI_FILE_BYTES, '\n'));

  const agentErr: string[] = [];
  const floorErr: string[] = [];
  const agentArgs = values['psi-interval'] === undefined ? [] : ['--psi-interval', values['psi-interval']];
  const agent = spawnNode([bundle, '--xenstore', daemon.socketPath, '--proc-root', tree, ...agentArgs], agentErr);
  const floor = spawnNode(['-e', 'setInterval(() => {}, 1 << 30)'], floorErr);
  try {
    // Start-up is not part of the steady window: the first report, then V8's start-up GCs
    // (its memory reducer runs ~10 s after start) settle before measuring.
    const first = reportLanding(watcher, 0);
    await Promise.race([first.promise, sleep(10_000)]);
    first.cancel();
    await sleep(15_000);

    // Steady window: the scripted PSI moves every second (averages decaying), no new stall.
    const cpu0 = { agent: cpuNs(agent.pid!), floor: cpuNs(floor.pid!), t: performance.now() };
    for (let s = 0; s < seconds; s++) {
      await sleep(1000);
      avg10 = Math.max(0, avg10 * 0.82);
      writePsi(psiFile, psiText(avg10, 4 * 0.97 ** s, 1, total));
    }
    const wall = (performance.now() - cpu0.t) * 1e6;
    const cpuAgent = ((cpuNs(agent.pid!) - cpu0.agent) / wall) * 100;
    const cpuFloor = ((cpuNs(floor.pid!) - cpu0.floor) / wall) * 100;
    const mAgent = memOf(agent.pid!);
    const mFloor = memOf(floor.pid!);

    // Stall → report, scripted: grow the total, time the landing on the independent watcher.
    const scripted: number[] = [];
    for (let i = 0; i < trials; i++) {
      await sleep(1100 + Math.random() * 200); // past the 1 s stall gap, random phase vs the poll
      total += 50_000;
      const landing = reportLanding(watcher, total);
      await sleep(0);
      const t0 = performance.now();
      writePsi(psiFile, psiText(avg10 + 1, 4, 1, total));
      const t1 = await Promise.race([landing.promise, sleep(5000).then(() => NaN)]);
      landing.cancel();
      scripted.push(t1 - t0);
    }
    agent.kill('SIGTERM');
    floor.kill('SIGTERM');

    const hog = values['no-hog'] ? 'skipped (--no-hog)' : await Promise.race([hogStalls(daemon, bundle, watcher, Math.min(trials, 5), agentArgs), sleep(120_000).then(() => 'timed out after 120 s')]);

    const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
    const rows: [string, string, string][] = [
      ['anonymous memory (KiB)', String(mAgent.anonKib), String(mFloor.anonKib)],
      ['RSS (KiB)', String(mAgent.rssKib), String(mFloor.rssKib)],
      [`CPU % of one core (${seconds} s)`, fmt(cpuAgent, 3), fmt(cpuFloor, 3)],
    ];
    process.stdout.write(`\nxmem-agent (bundle, node ${process.version}, flags ${NODE_FLAGS.join(' ')}${agentArgs.length ? `, ${agentArgs.join(' ')}` : ''}) vs an empty node, same run\n`);
    process.stdout.write(`${'measure'.padEnd(30)}${'agent'.padStart(12)}${'empty node'.padStart(14)}\n`);
    for (const [k, a, f] of rows) process.stdout.write(`${k.padEnd(30)}${a.padStart(12)}${f.padStart(14)}\n`);
    process.stdout.write(`\nstall → report in xenstore, scripted PSI (${trials} trials): median ${fmt(median(scripted))} ms, max ${fmt(Math.max(...scripted))} ms\n`);
    process.stdout.write(`  each: ${scripted.map((x) => fmt(x)).join(' ')}\n`);
    if (typeof hog === 'string') process.stdout.write(`stall → report, real memory hog in a cgroup: ${hog}\n`);
    else process.stdout.write(`stall → report, real memory hog in a ${HOG_LIMIT_MIB} MiB cgroup (${hog.length} trials, from the first growth of /proc/pressure/memory seen by a 1 ms poll): median ${fmt(median(hog))} ms, max ${fmt(Math.max(...hog))} ms\n  each: ${hog.map((x) => fmt(x)).join(' ')}\n`);
    const errs = agentErr.join('').split('\n').filter((l) => /cannot|error|fatal/.test(l));
    if (errs.length) process.stdout.write(`agent log problems:\n${errs.join('\n')}\n`);
    const stall = Math.max(...scripted, ...(typeof hog === 'string' ? [] : hog));
    process.stdout.write(
      `RESULT agent anon_kib=${mAgent.anonKib} rss_kib=${mAgent.rssKib} cpu_pct=${fmt(cpuAgent, 3)} node_floor_anon_kib=${mFloor.anonKib} stall_to_report_ms=${fmt(stall)}\n`,
    );
  } finally {
    agent.kill('SIGKILL');
    floor.kill('SIGKILL');
    await watcher.close();
    await daemon.stop();
    rmSync(tree, { recursive: true, force: true });
    rmSync(path.dirname(bundle), { recursive: true, force: true });
  }
}
