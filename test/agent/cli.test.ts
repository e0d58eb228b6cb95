import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGuestReport } from '../../src/schemas/report.js';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { buildAgentBundle } from './bundle.js';
import { procFixture, ScriptedProc } from './rig.js';

/** The shipped artefact (the esbuild bundle) run as a process, as systemd would run it. */
let bundle: string;
beforeAll(async () => {
  bundle = await buildAgentBundle();
});

const run = (args: string[]) => spawnSync(process.execPath, [bundle, ...args], { encoding: 'utf8', timeout: 10_000 });

describe('xmem-agent CLI', () => {
  it('--help prints the usage and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: xmem-agent/);
    for (const flag of ['--once', '--interval', '--psi-trigger', '--threshold', '--heartbeat', '--xenstore', '--proc-root', '--sys-root']) expect(r.stdout).toContain(flag);
  });

  it.each([
    [['--interval', 'soon'], /--interval: not a duration/],
    [['--threshold=-5'], /--threshold: expected a number/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--heartbeat', '0.1'], /--heartbeat: must be between/],
    [['--psi-trigger', ''], /--psi-trigger: expected a path or "off"/],
  ])('rejects %j with a clear message and exit code 2', (args, message) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split('\n').filter(Boolean).length).toBeLessThanOrEqual(2);
  });

  it('--once prints the report it would send, valid for the manager\'s parser', () => {
    const r = run(['--once', '--proc-root', procFixture('guest-5.10-swap')]);
    expect(r.status).toBe(0);
    const parsed = parseGuestReport(r.stdout.trim());
    expect(parsed).toMatchObject({ ok: true, value: { total: 988264, swtot: 1048572, psi: { s10: 23.41 } } });
  });

  it('--once on this machine\'s /proc', () => {
    const r = run(['--once']);
    expect(r.status).toBe(0);
    expect(parseGuestReport(r.stdout.trim()).ok).toBe(true);
  });

  it('--once fails with exit 1 and one line when the proc tree is unusable', () => {
    const r = run(['--once', '--proc-root', procFixture('bad')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^xmem-agent: .*meminfo: ENOENT\n$/);
  });
});

const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/agent/cli.test.ts daemon tests: real C xenstored unavailable (${skip})`);

describe.skipIf(skip !== null)('xmem-agent process against the real C xenstored (socket)', () => {
  let daemon: PeerDaemon;
  let dom0: XenstoreConnection;
  let proc: ScriptedProc;
  let child: ChildProcess;
  let stderr = '';
  let exit: Promise<number | null>;

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
    dom0 = await connectXenstore({ path: daemon.socketPath, backoffMs: { initial: 20, max: 200 } });
    proc = new ScriptedProc('host-6.18-noswap');
    child = spawn(process.execPath, [bundle, '--xenstore', daemon.socketPath, '--proc-root', proc.root, '--sys-root', '/nonexistent', '--heartbeat', '2s'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  });
  afterAll(async () => {
    child?.kill('SIGKILL');
    proc?.dispose();
    await dom0?.close();
    await daemon?.stop();
  });

  /** Polls dom0's view of the agent's key until `pred` holds (real time). */
  async function until(pred: (seq: number | null) => boolean, ms = 10_000): Promise<number | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const raw = await dom0.tryRead('/local/domain/0/data/xmem').catch(() => null);
      const r = raw === null ? null : parseGuestReport(raw);
      const seq = r && r.ok ? r.value.seq : null;
      if (pred(seq)) return seq;
      if (Date.now() > deadline) throw new Error(`timed out; agent stderr:\n${stderr}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  it('publishes, then heartbeats', async () => {
    const first = await until((s) => s !== null);
    await until((s) => s !== null && s > first!, 5000);
  });

  it('survives the daemon being killed, stays up while it is down, and republishes to the restarted one', async () => {
    process.kill(daemon.pid()!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 3000));
    expect(child.exitCode).toBeNull();
    await daemon.restart(); // a fresh daemon: empty tree
    const seq = await until((s) => s !== null, 15_000);
    expect(seq).toBeGreaterThan(1);
    const lost = stderr.split('\n').filter((l) => /connection lost|cannot write/.test(l));
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(lost.length).toBeLessThanOrEqual(3); // one line per change of state, not one per retry
    expect(stderr).toMatch(/xenstore connection back|writing data\/xmem after \d+ failed/);
  });

  it('exits 0 on SIGTERM, promptly', async () => {
    const t0 = Date.now();
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(stderr.trim().split('\n').at(-1)).toBe('xmem-agent: SIGTERM: stopping');
    if (process.env.XMEM_SHOW_AGENT_LOG) console.log(stderr);
  });
});
