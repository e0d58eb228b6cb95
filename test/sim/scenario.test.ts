import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { totals } from '../../dom0/sim/metrics.js';
import { runScenario } from '../../dom0/sim/run.js';
import { listScenarios, loadScenario, parseScenario, ScenarioError } from '../../dom0/sim/scenario.js';
import { expand } from '../../dom0/sim/simulation.js';

const run = promisify(execFile);

describe('scenario files', () => {
  it('every shipped scenario parses; the brief\'s three exist with their sizes', async () => {
    const names = await listScenarios();
    expect(names).toEqual(expect.arrayContaining(['qubes-laptop', 'server-host', 'scarcity-storm']));
    for (const n of names) await loadScenario(n);
    const laptop = await loadScenario('qubes-laptop');
    expect(laptop.host.totalMiB).toBe(16 * 1024);
    const guests = expand(laptop.vms).filter((v) => !v.dom0);
    expect(guests.filter((v) => v.startS === undefined).length).toBeGreaterThanOrEqual(6);
    expect(guests.some((v) => v.startS !== undefined) && guests.some((v) => v.stopS !== undefined)).toBe(true);
    expect(expand((await loadScenario('server-host')).vms).length).toBeGreaterThan(100);
  });

  it('a bad scenario is refused with every offending path', () => {
    const bad = {
      name: 'x', description: 'x', durationS: 10, host: { totalMiB: 1024 },
      workloads: { w: { points: [] } },
      vms: [{ name: 'a', memoryMiB: 500, maxMiB: 400, workload: 'nope' }],
    };
    let message = '';
    try {
      parseScenario(bad, 'bad.json');
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/workloads\.w\.points/);
    expect(message).toMatch(/vms\.0\.workload: unknown workload nope/);
    expect(message).toMatch(/vms\.0\.memoryMiB/);
    expect(message).toMatch(/dom0/);
  });

  it('xmem sim exits 2 with a clear line on a bad scenario, policy or speed', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'xmem-sim-'));
    const file = path.join(dir, 'bad.json');
    await writeFile(file, '{"name": 1}');
    const cli = ['tsx', 'dom0/cli.ts', 'sim'];
    for (const args of [[file], ['--policy', 'magic'], ['--speed', '0'], ['nosuch']]) {
      const r = await run('npx', [...cli, ...args], { cwd: process.cwd() }).then(() => null, (e: { code: number; stderr: string }) => e);
      expect(r?.code, args.join(' ')).toBe(2);
      expect(r?.stderr, args.join(' ')).toMatch(/^xmem sim: /m);
    }
  }, 60_000);
});

describe('determinism', () => {
  it('the same scenario and seed give identical results; another seed does not', async () => {
    const s = await loadScenario('scarcity-storm');
    const short = { ...s, durationS: 120 };
    const a = await runScenario(short, 'xmem');
    const b = await runScenario(short, 'xmem');
    const c = await runScenario({ ...short, seed: short.seed + 1 }, 'xmem');
    expect(b).toEqual(a);
    expect(totals(c).stallSomeS).not.toBe(totals(a).stallSomeS);
  }, 60_000);
});
