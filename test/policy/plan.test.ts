import { execa } from 'execa';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { G, M, xmemReport } from './helpers.js';

/** `xmem plan` end to end: the real CLI under tsx, a snapshot on stdin, JSON on stdout. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'dom0/cli.ts');
const tsx = path.join(root, 'node_modules/.bin/tsx');

function plan(args: string[], stdin: string) {
  return execa(tsx, [cli, 'plan', ...args], { input: stdin, reject: false, cwd: root, env: { NO_COLOR: '1' } });
}

const snapshot = {
  nowMs: 0,
  totalKib: 16 * G,
  freeKib: 4 * G,
  vms: [
    { domid: 0, name: 'dom0', actualKib: 2 * G, staticMaxKib: 4 * G, signal: { kind: 'qubes', usedKib: 1 * G, ageMs: 0 } },
    { domid: 3, name: 'work', actualKib: 1 * G, staticMaxKib: 4 * G, signal: { kind: 'xmem', report: xmemReport({ allocation: 1 * G, commit: 1536 * M, unrec: 700 * M }), ageMs: 200 } },
    { domid: 4, name: 'legacy', actualKib: 1 * G, staticMaxKib: 2 * G },
  ],
};

describe('xmem plan (end to end)', () => {
  it('prints a decision with a reason for every VM, for each policy', async () => {
    for (const policy of ['xmem', 'qmemman', 'squeezed', 'static']) {
      const r = await plan(['--policy', policy], JSON.stringify(snapshot));
      expect(r.exitCode, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { policy: string; summary: string; decisions: { name: string; targetKib: number; reason: string; managed: boolean }[]; history: Record<string, unknown> };
      expect(out.policy).toBe(policy);
      expect(out.summary.startsWith(policy)).toBe(true);
      expect(out.decisions.map((d) => d.name).sort()).toEqual(['dom0', 'legacy', 'work']);
      for (const d of out.decisions) expect(d.reason.length).toBeGreaterThan(10);
      expect(Object.keys(out.history).sort()).toEqual(['0', '3', '4']);
    }
  }, 60_000);

  it('xmem: the VM without a signal is held; the one with a report grows toward its ideal', async () => {
    const r = await plan([], JSON.stringify(snapshot));
    const out = JSON.parse(r.stdout) as { decisions: { name: string; targetKib: number; idealKib: number; change: string; managed: boolean }[] };
    const d = Object.fromEntries(out.decisions.map((x) => [x.name, x]));
    expect(d.legacy).toMatchObject({ targetKib: 1 * G, managed: false, change: 'hold' });
    expect(d.work!.change).toBe('grow');
    expect(d.work!.targetKib).toBeGreaterThanOrEqual(d.work!.idealKib);
  });

  it('applies --config: policy keys and per-VM overrides by name', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xmem-plan-'));
    const conf = path.join(dir, 'config.json');
    writeFileSync(conf, JSON.stringify({ policy: 'static', vms: { legacy: { pin: '1536M' } } }));
    const r = await plan(['--config', conf], JSON.stringify(snapshot));
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { policy: string; decisions: { name: string; targetKib: number; reason: string }[] };
    expect(out.policy).toBe('static');
    expect(out.decisions.find((x) => x.name === 'legacy')).toMatchObject({ targetKib: 1536 * M });
  });

  it.each([
    ['not JSON', 'this is not json', /stdin: not valid JSON/],
    ['empty', '', /stdin: empty/],
    ['a wrong type', JSON.stringify({ ...snapshot, freeKib: 'lots' }), /freeKib: /],
    ['a bad VM field', JSON.stringify({ ...snapshot, vms: [{ ...snapshot.vms[0], actualKib: -5 }] }), /vms\.0\.actualKib/],
    ['a bad guest report', JSON.stringify({ ...snapshot, vms: [{ ...snapshot.vms[1], signal: { kind: 'xmem', report: { v: 2 }, ageMs: 0 } }] }), /vms\.0\.signal\.report/],
    ['an unknown key', JSON.stringify({ ...snapshot, extra: 1 }), /\(root\)|extra/],
    ['a duplicate domid', JSON.stringify({ ...snapshot, vms: [snapshot.vms[0], snapshot.vms[0]] }), /vms\.1\.domid: domid 0 appears twice/],
  ])('%s on stdin: exit 2 with the offending path', async (_, input, message) => {
    const r = await plan([], input);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
  }, 30_000);

  it('bad arguments or config: exit 2', async () => {
    const unknown = await plan(['--policy', 'balloon'], JSON.stringify(snapshot));
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown policy 'balloon'/);
    const missing = await plan(['--config', '/nonexistent/xmem.json'], JSON.stringify(snapshot));
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/cannot read/);
    const flag = await plan(['--frobnicate'], '{}');
    expect(flag.exitCode).toBe(2);
  }, 30_000);
});
