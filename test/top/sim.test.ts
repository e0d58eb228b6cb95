/**
 * End to end on a simulated host: `xmem sim` (the real manager and policy balancing simulated
 * guests that publish real agent reports) serves the state stream; `xmem status`, the metrics
 * and `xmem top` in tmux read it; the service is killed and restarted under top's eyes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { fetchState } from '../../dom0/state/client.js';
import type { HostState } from '../../src/schemas/state.js';
import { httpGet, tempDir, until } from './helpers.js';
import { parsePromText, pick } from './prom-text.js';
import { repoRoot, Tmux, tmuxSkipReason } from './tmux.js';

const SCENARIO_VMS = ['Domain-0', 'sys-net', 'sys-firewall', 'work', 'personal', 'dev', 'vault', 'mail', 'untrusted', 'disp1234'];
const skip = tmuxSkipReason();
if (skip && process.env.CI === 'true') throw new Error(`xmem top simulated-host tests cannot run in CI: ${skip}`);
if (skip) console.warn(`\n!!! SKIPPING xmem top on a simulated host: ${skip}\n`);

describe.skipIf(skip !== null)('xmem top on a simulated host (xmem sim)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sock: string;
  let sim: ResultPromise | null = null;
  let tmux: Tmux;

  const startSim = async (): Promise<HostState> => {
    sim = execa('node', ['--import', 'tsx', 'dom0/cli.ts', 'sim', 'qubes-laptop', '--speed', '5', '--every', '0', '--socket', sock], {
      cwd: repoRoot,
      reject: false,
    });
    // The first pass publishes targets; wait until the manager has decided for some VMs.
    return until(async () => {
      const s = await fetchState({ socketPath: sock }, 2000).catch(() => undefined);
      return s && s.vms.some((v) => v.idealKib !== null) ? s : undefined;
    }, 'the simulated host to serve its first decisions', 30_000);
  };
  const stopSim = async (): Promise<void> => {
    if (!sim) return;
    sim.kill('SIGTERM');
    await sim;
    sim = null;
  };

  beforeAll(async () => {
    tmp = await tempDir();
    sock = path.join(tmp.dir, 'state.sock');
    tmux = new Tmux(tmp.dir);
  });
  afterAll(async () => {
    await tmux?.kill();
    await stopSim();
    await tmp?.cleanup();
  });

  it('serves schema-valid snapshots and metrics that agree with them', async () => {
    const state = await startSim();
    expect(state.vms.length).toBeGreaterThanOrEqual(5);
    for (const v of state.vms) expect(SCENARIO_VMS).toContain(v.name);
    expect(state.host.totalKib).toBeGreaterThan(0);

    // Snapshot first, then scrape: VMs only start in this part of the scenario, so every VM of
    // the snapshot is in the scrape.
    const now = await fetchState({ socketPath: sock });
    const res = await httpGet({ socketPath: sock }, '/metrics');
    const { samples } = parsePromText(res.body);
    expect(pick(samples, 'xmem_host_total_bytes')).toBe(now.host.totalKib * 1024);
    for (const v of now.vms) {
      // maxmem does not move in this scenario, so the scrape and the snapshot must agree exactly.
      expect(pick(samples, 'xmem_vm_maxmem_bytes', { vm: v.name, domid: String(v.domid) })).toBe(v.maxmemKib * 1024);
    }
  });

  it('shows every VM in top at 200x50, sorts by name, and opens the detail pane', async () => {
    await tmux.start('sim', 200, 50, `sh -c 'node --import tsx dom0/cli.ts top --socket ${sock}; exec sleep 600'`, { TZ: 'UTC' });
    const state = await fetchState({ socketPath: sock });
    const rowsOf = (screen: string[]): string[] => {
      const head = screen.findIndex((l) => l.startsWith('NAME '));
      return head < 0 ? [] : screen.slice(head + 1).map((l) => l.split(/\s+/)[0]!).filter((n) => SCENARIO_VMS.includes(n));
    };
    let s = await tmux.waitFor('sim', 'the simulated VMs', (x) => state.vms.every((v) => rowsOf(x).includes(v.name)));
    expect(s[0]).toMatch(/^policy xmem {2}total 16\.0G/);
    await tmux.keys('sim', 'n');
    s = await tmux.waitFor('sim', 'name order', (x) => x.some((l) => l.startsWith('sort: name')));
    const names = rowsOf(s);
    expect(names).toEqual([...names].sort());
    await tmux.keys('sim', 'Enter');
    s = await tmux.waitFor('sim', 'detail pane', (x) => x.some((l) => l.startsWith(`-- ${names[0]} (domid `)));
    expect(s.join('\n')).toMatch(/target history \(newest first, \d+ in the recent window\)/);
  });

  it('shows the disconnect banner when the service stops, and reconnects when it is back', async () => {
    await stopSim();
    await tmux.waitFor('sim', 'the disconnect banner', (x) => x[0]!.startsWith(' DISCONNECTED ('));
    await startSim();
    const s = await tmux.waitFor('sim', 'reconnection', (x) => !x.some((l) => l.includes('DISCONNECTED')) && x.some((l) => l.startsWith('work ')), 30_000);
    expect(s.some((l) => l.startsWith('sort: name'))).toBe(true); // the viewer's choices survive the outage
  });
});
