import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Published } from '../../domU-agent/src/agent.js';
import type { HelperSpec } from '../../domU-agent/src/helper.js';
import { realClock, type Clock } from '../../src/clock.js';
import { parseGuestReport } from '../../src/schemas/report.js';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { buildAgentBundle } from './bundle.js';
import { buildHelper, CgroupHog, privileged } from './native.js';
import { countingSources, guestConnect, introduceGuest, makeAgent, ScriptedProc, usePeerFixture } from './rig.js';

/**
 * The agent with its PSI-trigger helper, on the real clock and the real C xenstored (as an
 * unprivileged guest over its ring). A scripted helper (a shell script speaking the helper's
 * protocol, fed by the test through a FIFO) makes the events; the real helper is used at the
 * end, against this machine's real PSI.
 */
const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/agent/trigger.test.ts: real C xenstored unavailable (${skip})`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A scripted xmem-psi-trigger in its own directory. */
class Stub {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-stub-'));
  readonly path = path.join(this.dir, 'helper');
  private fd: number | null = null;

  constructor(body?: string) {
    spawnSync('mkfifo', [path.join(this.dir, 'events')]);
    writeFileSync(
      this.path,
      body ??
        [
          '#!/bin/sh',
          '# Records argv and stdin, says ready, then forwards what the test writes to the FIFO.',
          'd=$(dirname "$0")',
          'echo "$$ $*" >> "$d/argv"',
          '# (an asynchronous command\'s stdin is /dev/null unless redirected: keep ours as fd 3)',
          'exec 3<&0',
          'cat <&3 >> "$d/stdin" &',
          'echo ready',
          'exec cat "$d/events"',
          '',
        ].join('\n'),
      { mode: 0o755 },
    );
  }

  /** Writes event lines; the FIFO is opened read-write so this never blocks. */
  emit(lines: string): void {
    this.fd ??= openSync(path.join(this.dir, 'events'), 'r+');
    writeSync(this.fd, lines);
  }

  /** Closes the test's end: the helper's cat sees EOF and it exits (code 0). */
  end(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  starts(): { pid: number; args: string }[] {
    try {
      return readFileSync(path.join(this.dir, 'argv'), 'latin1').trim().split('\n').filter(Boolean).map((l) => ({ pid: Number(l.split(' ')[0]), args: l.slice(l.indexOf(' ') + 1) }));
    } catch {
      return [];
    }
  }

  commands(): string[] {
    try {
      return readFileSync(path.join(this.dir, 'stdin'), 'latin1').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  }

  dispose(): void {
    this.end();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(f: () => T | null | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe.skipIf(skip !== null)('agent with the PSI-trigger helper (real clock, real C xenstored, guest ring)', () => {
  const peer = usePeerFixture();
  let nextDomid = 40;

  async function setup(helper: HelperSpec | null) {
    const domid = nextDomid++;
    await introduceGuest(peer.daemon, peer.dom0, domid);
    const proc = new ScriptedProc('guest-5.10-swap');
    // The real clock, recording every timer the agent arms after `mark` is set.
    const timers: { at: number; ms: number }[] = [];
    const clock: Clock = {
      now: realClock.now,
      sleep: realClock.sleep,
      setTimer: (ms, fn) => {
        timers.push({ at: performance.now(), ms });
        return realClock.setTimer(ms, fn);
      },
    };
    let counts = { psi: 0, mem: 0, full: 0 };
    const rig = makeAgent({
      clock,
      connect: guestConnect(peer.daemon, domid),
      procRoot: proc.root,
      helper,
      helperTiming: { backoffMinMs: 300, backoffMaxMs: 1000, stableMs: 60_000 },
      wrapSources: (s) => {
        const c = countingSources(s);
        counts = c.counts;
        return c;
      },
    });
    const published: (Published & { seen: number })[] = [];
    rig.agent.on('published', (p: Published) => published.push({ ...p, seen: performance.now() }));
    peer.cleanups.push(() => proc.dispose(), () => rig.stop());
    rig.agent.start();
    await until(() => published.length > 0, 5000, 'the first report');
    return { domid, proc, rig, published, timers, counts: () => ({ ...counts }) };
  }

  const stubSpec = (stub: Stub): HelperSpec => ({ path: stub.path, args: ['-p', '/proc/pressure/memory', '-s', '1'], watchesMeminfo: true });

  it('a stall event gets its report into xenstore at once, and no poll timer runs meanwhile', async () => {
    const stub = new Stub();
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await until(() => s.rig.agent.helperState?.ready, 5000, 'the helper to be ready');
    expect(s.rig.logs).toContain(`PSI trigger helper running (pid ${stub.starts()[0]!.pid}): stalls and meminfo changes wake the agent, no polling`);
    expect(stub.starts()[0]!.args).toBe('-p /proc/pressure/memory -s 1');
    await sleep(200); // the read at arming, and its ranges sent
    const before = s.counts();
    const mark = performance.now();
    await sleep(1500);
    const quiet = s.counts();
    // No stall poll (it would have read PSI 10 times) and no meminfo sample (1–2 times).
    expect(quiet.psi - before.psi).toBe(0);
    expect(quiet.mem - before.mem).toBe(0);
    expect(s.timers.filter((t) => t.at >= mark)).toEqual([]);
    // The timer left armed is the computed PSI decay report or the safety net, not a poll.
    expect(s.timers.filter((t) => t.at < mark).at(-1)!.ms).toBeGreaterThan(5000);
    // The meminfo ranges reached the helper: forms of lo, hi and nine coefficients.
    const watch = stub.commands().at(-1)!.split(' ');
    expect(watch[0]).toBe('w');
    expect((watch.length - 1) % 11).toBe(0);
    expect(watch.length - 1).toBeGreaterThanOrEqual(5 * 11);

    // A stall: the kernel's total grows and the trigger fires.
    s.proc.setPsi({ avg10: 23.41, avg60: 11.02, avg300: 3.87, total: 48_263_390 });
    const t0 = performance.now();
    stub.emit('s\n');
    const report = await until(() => s.published.find((p) => p.reason === 'stall'), 2000, 'the stall report');
    expect(report.seen - t0).toBeLessThan(100);
    const raw = await peer.dom0.read(`/local/domain/${s.domid}/data/xmem`);
    const r = parseGuestReport(raw);
    expect(r.ok && r.value.psi?.stot).toBe(48_263_390);
    expect(s.counts().psi - quiet.psi).toBe(1);
  });

  it('a meminfo event samples meminfo, and a real change is published; without an event meminfo is not sampled', async () => {
    const stub = new Stub();
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await until(() => s.rig.agent.helperState?.ready, 5000, 'the helper to be ready');
    await sleep(200);
    const free = s.proc.meminfo('MemFree');
    s.proc.setMeminfo('MemFree', free - 50_000);
    await sleep(1300);
    expect(s.published.map((p) => p.reason)).toEqual(['first']); // the helper said nothing
    const t0 = performance.now();
    stub.emit('m\n');
    const report = await until(() => s.published.find((p) => p.reason === 'memory'), 2000, 'the memory report');
    expect(report.seen - t0).toBeLessThan(100);
    expect(report.report.free).toBe(free - 50_000);
    // New ranges around the new report: the watch is re-armed.
    await until(() => stub.commands().length >= 2, 1000, 'new ranges');
  });

  it('polls when the helper is missing, with one line saying so', async () => {
    const s = await setup({ path: '/nonexistent/xmem-psi-trigger', args: [], watchesMeminfo: true });
    expect(s.rig.logs.filter((l) => l.includes('PSI trigger'))).toEqual([
      'PSI trigger unavailable: helper /nonexistent/xmem-psi-trigger cannot be run (ENOENT); polling PSI every 150 ms and meminfo every 1000 ms',
    ]);
    const before = s.counts();
    await sleep(1500);
    const after = s.counts();
    expect(after.psi - before.psi).toBeGreaterThanOrEqual(7); // every 150 ms
    expect(after.mem - before.mem).toBeGreaterThanOrEqual(1);
    s.proc.setPsi({ avg10: 23.41, avg60: 11.02, avg300: 3.87, total: 48_263_390 });
    const t0 = performance.now();
    const report = await until(() => s.published.find((p) => p.reason === 'stall'), 2000, 'the stall report');
    expect(report.seen - t0).toBeLessThan(200);
  });

  it('polls when the helper exits, restarts it with backoff, and stops polling when it is back', async () => {
    const stub = new Stub();
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await until(() => s.rig.agent.helperState?.ready, 5000, 'the helper to be ready');
    stub.emit(''); // open the FIFO so its end can be closed
    await sleep(100);
    stub.end(); // the helper's input ends: it exits 0
    await until(() => s.rig.logs.some((l) => l.includes('PSI trigger helper exited')), 2000, 'the exit line');
    expect(s.rig.logs.filter((l) => l.includes('PSI trigger helper exited'))).toEqual([
      'PSI trigger helper exited (code 0); polling PSI every 150 ms and meminfo every 1000 ms; restarting it with backoff (now 300 ms, at most 1000 ms)',
    ]);
    const down = s.counts();
    await until(() => stub.starts().length === 2, 3000, 'the restart');
    await until(() => s.rig.agent.helperState?.ready, 2000, 'the helper to be ready again');
    const polled = s.counts();
    expect(polled.psi - down.psi).toBeGreaterThanOrEqual(2); // polling meanwhile
    expect(s.rig.logs.at(-1)).toBe(`PSI trigger helper running again (pid ${stub.starts()[1]!.pid}): stalls and meminfo changes wake the agent, no polling`);
    await sleep(300);
    const back = s.counts();
    await sleep(1000);
    expect(s.counts().psi - back.psi).toBe(0);
  });

  it('does not restart a helper that reports the trigger unsupported (exit 3)', async () => {
    const stub = new Stub(['#!/bin/sh', 'echo "$$ $*" >> "$(dirname "$0")/argv"', 'echo \'xmem-psi-trigger: kernel refused trigger "some 1 500000" on /proc/pressure/memory: Invalid argument\' >&2', 'exit 3', ''].join('\n'));
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await sleep(1500); // several backoff periods
    expect(stub.starts()).toHaveLength(1);
    expect(s.rig.logs.filter((l) => l.includes('PSI trigger'))).toEqual([
      'PSI trigger unavailable: kernel refused trigger "some 1 500000" on /proc/pressure/memory: Invalid argument; polling PSI every 150 ms and meminfo every 1000 ms',
    ]);
    const before = s.counts();
    await sleep(500);
    expect(s.counts().psi - before.psi).toBeGreaterThanOrEqual(2);
  });

  it('with a helper that watches meminfo but has no trigger ("ready mem"), polls PSI and not meminfo', async () => {
    const stub = new Stub();
    writeFileSync(stub.path, readFileSync(stub.path, 'latin1').replace('echo ready', 'echo "ready mem kernel refused trigger"'));
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await until(() => s.rig.agent.helperState?.ready, 5000, 'the helper to be ready');
    expect(s.rig.logs).toContain(`PSI trigger helper running (pid ${stub.starts()[0]!.pid}) without a trigger (kernel refused trigger): meminfo changes wake the agent; polling PSI every 150 ms`);
    await sleep(200);
    const before = s.counts();
    await sleep(1200);
    const after = s.counts();
    expect(after.psi - before.psi).toBeGreaterThanOrEqual(6);
    expect(after.mem - before.mem).toBe(0);
  });

  it('samples meminfo itself when the helper refuses its watch command ("e")', async () => {
    const stub = new Stub();
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await until(() => s.rig.agent.helperState?.ready, 5000, 'the helper to be ready');
    await sleep(200);
    stub.emit('e\n');
    await until(() => s.rig.logs.some((l) => l.includes('refused a meminfo watch')), 2000, 'the log line');
    expect(s.rig.logs.filter((l) => l.includes('refused'))).toEqual([`the PSI trigger helper ${stub.path} refused a meminfo watch (another version?); sampling meminfo every 1000 ms`]);
    const before = s.counts();
    await sleep(2100);
    const after = s.counts();
    expect(after.mem - before.mem).toBeGreaterThanOrEqual(2);
    expect(after.psi - before.psi).toBe(0); // the trigger still runs
  });

  it('stop() ends the helper', async () => {
    const stub = new Stub();
    peer.cleanups.push(() => stub.dispose());
    const s = await setup(stubSpec(stub));
    await until(() => s.rig.agent.helperState?.ready, 5000, 'the helper to be ready');
    const { pid } = stub.starts()[0]!;
    expect(alive(pid)).toBe(true);
    await s.rig.stop();
    expect(alive(pid)).toBe(false);
  });
});

/** The shipped artefacts (bundle + real helper) as processes, against this machine's real PSI. */
const built = skip ? null : buildHelper();
const noHelper = built && 'skip' in built ? built.skip : null;
if (noHelper) console.warn(`SKIP test/agent/trigger.test.ts process tests: the native helper could not be built here (${noHelper})`);

describe.skipIf(skip !== null || noHelper !== null)('xmem-agent process with the real helper (real C xenstored, real /proc)', () => {
  let daemon: PeerDaemon;
  let dom0: XenstoreConnection;
  let bundle: string;
  let dir: string;
  let helperCmd: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
    dom0 = await connectXenstore({ path: daemon.socketPath });
    bundle = await buildAgentBundle();
    dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-trigger-proc-'));
    const bin = (built as { path: string }).path;
    const run = privileged(bin, dir);
    if (run.note) console.warn(`test/agent/trigger.test.ts: ${run.note}`);
    helperCmd = run.wrapper ?? bin;
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await dom0?.close();
    await daemon?.stop();
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.dirname(bundle), { recursive: true, force: true });
    if (built && 'path' in built) rmSync(path.dirname(built.path), { recursive: true, force: true });
  });

  function startAgent(extra: string[] = []): { child: ChildProcess; stderr: () => string; helperPid: () => Promise<number> } {
    let stderr = '';
    const child = spawn(process.execPath, [bundle, '--xenstore', daemon.socketPath, '--heartbeat', '3600s', '--psi-trigger', helperCmd, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const helperPid = () => until(() => Number(/PSI trigger helper running \(pid (\d+)\)/.exec(stderr)?.[1]) || null, 10_000, `the helper; agent stderr:\n${stderr}`);
    return { child, stderr: () => stderr, helperPid };
  }

  it('arms the real trigger; the helper exits with the agent, on SIGTERM and on SIGKILL', async () => {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      const a = startAgent();
      const pid = await a.helperPid();
      expect(alive(pid)).toBe(true);
      a.child.kill(signal);
      await until(() => !alive(pid), 2000, `the helper to go after ${signal}`);
      if (signal === 'SIGTERM') {
        await new Promise((r) => (a.child.exitCode !== null ? r(null) : a.child.once('exit', r)));
        expect(a.child.exitCode).toBe(0);
      }
    }
  });

  it('a real memory stall (hog in a 64 MiB cgroup) reaches xenstore within 200 ms through the trigger', async () => {
    const hog = CgroupHog.create();
    if (typeof hog === 'string') {
      if (process.env.CI === 'true') throw new Error(`CI=true but no memory stall can be made here: ${hog}`);
      console.warn(`SKIP real-stall check: ${hog}`);
      return;
    }
    // This reads the host's real /proc, whose memory moves while other tests run: memory
    // thresholds out of reach, so only stalls (and their decay) make reports here.
    const a = startAgent(['--threshold', '4000000000', '--grow-threshold', '4000000000']);
    // Every report dom0 sees, with its time (a report may even beat the 1 ms poll).
    const seen: { t: number; stot: number }[] = [];
    const unwatch = await dom0.watch('/local/domain/0/data/xmem', () => {
      const t = performance.now();
      void dom0.tryRead('/local/domain/0/data/xmem').then((raw) => {
        const r = raw === null ? null : parseGuestReport(raw);
        if (r?.ok && r.value.psi) seen.push({ t, stot: r.value.psi.stot });
      });
    });
    try {
      await a.helperPid();
      expect(await hog.ready()).toBeNull();
      // Setting the hog up stalled too: wait until the agent's last report is older than its
      // 1 s stall gap, so the trial measures the trigger, not the rate limit.
      await until(() => performance.now() - (seen.at(-1)?.t ?? 0) > 1100, 30_000, 'the agent to be quiet');
      const stall = await hog.go();
      expect(stall).not.toBeNull();
      const first = await until(() => seen.find((x) => x.stot > stall!.base), 3000, `the stall report; agent stderr:\n${a.stderr()}`);
      const detail = `reports (ms from the first growth : stall µs beyond it): ${seen.map((x) => `${(x.t - stall!.t0).toFixed(1)}:${x.stot - stall!.base}`).join(' ')}\n${a.stderr()}`;
      expect(first.t - stall!.t0, detail).toBeLessThan(200);
    } finally {
      await unwatch();
      a.child.kill('SIGTERM');
      await hog.dispose();
    }
  }, 60_000);
});
