import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import type { XenstoreConnection } from '../../src/xenstore/client.js';
import { encodeGuestReport } from '../../src/schemas/report.js';
import { keys } from '../../dom0/manager/keys.js';
import { schedulingPolicyOf } from '../../dom0/manager/realtime.js';
import { report } from './helpers.js';
import { GiB, MiB, createDomainNodes } from './rig.js';

/**
 * `xmem run` as a process: the real C xenstored, and a stand-in `xl` (a shell script printing
 * the table/info formats and logging its calls) for the hypervisor side.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/manager/run.test.ts (service part): real xenstored unavailable (${skip})`);

function cli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(root, 'dom0/cli.ts'), ...args], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function finished(p: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => (stdout += d));
  p.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => p.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** Polls until fn gives a truthy value, and returns it. */
async function until<T>(fn: () => T | Promise<T>, what: string, ms = 15_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('xmem run: usage and config errors', () => {
  it('exits 2 naming the offending key, and --check validates', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-run-'));
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ service: { stuckAfterMs: 'never' } }));
    const r = await finished(cli(['run', '--config', bad]));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('service.stuckAfterMs');
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ policy: 'qmemman', vms: { work: { min: '1G' } } }));
    const ok = await finished(cli(['run', '--config', good, '--check']));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('policy qmemman');
    expect((await finished(cli(['run', '--bogus']))).code).toBe(2);
  }, 60_000); // three tsx start-ups: slow on a loaded two-core box
});

describe.skipIf(skip !== null)('xmem run as a service (real C xenstored, stand-in xl)', () => {
  let daemon: PeerDaemon;
  let tools: XenstoreConnection;
  let dir: string;
  const xlLog = () => (existsSync(path.join(dir, 'calls.log')) ? readFileSync(path.join(dir, 'calls.log'), 'utf8') : '');

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
    tools = await connectXenstore({ path: daemon.socketPath });
    dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-svc-'));
    const header = 'Name                                        ID   Mem VCPUs\tState\tTime(s)';
    writeFileSync(path.join(dir, 'list.txt'), [
      header,
      'Domain-0                                     0  2048     2     r-----      10.0',
      'work                                         1  1024     1     -b----       5.0',
      '',
    ].join('\n'));
    writeFileSync(path.join(dir, 'info.txt'), 'total_memory           : 16384\nfree_memory            : 13312\n');
    const xl = path.join(dir, 'xl');
    writeFileSync(xl, [
      '#!/bin/sh',
      `d='${dir}'`,
      'echo "$*" >> "$d/calls.log"',
      'case "$1" in list) cat "$d/list.txt";; info) cat "$d/info.txt";; mem-max) exit 0;; *) exit 1;; esac',
      '',
    ].join('\n'));
    chmodSync(xl, 0o755);
    await createDomainNodes(tools, { domid: 0, name: 'Domain-0', actualKib: 2 * GiB, maxmemKib: 2 * GiB + 1024, staticMaxKib: 2 * GiB } as never);
    await createDomainNodes(tools, { domid: 1, name: 'work', actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024, staticMaxKib: 4 * GiB } as never);
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
      surplus: 'free',
      service: {
        xenstorePath: daemon.socketPath, xlPath: xl, stateSocket: path.join(dir, 'state.sock'),
        admissionSocket: path.join(dir, 'admission.sock'), minPassIntervalMs: 0, convergePollMs: 60_000,
      },
    }));
  });
  afterAll(async () => {
    await tools?.close();
    await daemon?.stop();
  });

  it('balances on a guest report, serves its state, stops on SIGTERM leaving targets; a restart resumes', async () => {
    const svc = cli(['run', '--config', path.join(dir, 'config.json')]);
    const done = finished(svc);
    let out = '';
    svc.stdout!.on('data', (d) => (out += d));
    await until(() => out.includes('manager started'), 'manager started');
    await until(() => out.includes('"scheduling":"off: config"'), 'scheduling line (off by default)');
    await tools.write(keys(1).report, encodeGuestReport(report({ seq: 1, total: 2 * GiB, commit: 1800 * MiB, anon: 1600 * MiB, free: 64 * MiB, avail: 200 * MiB, bcur: 1 * GiB, btgt: 1 * GiB })));
    await until(async () => Number(await tools.read(keys(1).target)) > 1 * GiB, 'work grown');
    const target = Number(await tools.read(keys(1).target));
    // The ceiling was raised with xl mem-max (to the target; xl adds its 1 MiB) before the grow.
    expect(xlLog()).toContain(`mem-max 1 ${target}k`);
    expect(existsSync(path.join(dir, 'state.sock'))).toBe(true);
    expect(existsSync(path.join(dir, 'admission.sock'))).toBe(true);
    // Each log line is JSON; the pass that grew `work` says why (logged once its writes are
    // answered, so the line may follow the target by a moment).
    const balanced = await until(() => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; changes?: { vm: string; reason: string }[] })
      .find((l) => l.msg === 'balanced' && l.changes?.some((c) => c.vm === 'work')), 'balanced line for work');
    expect(balanced.changes?.find((c) => c.vm === 'work')?.reason).toMatch(/\w/);

    svc.kill('SIGTERM');
    const r = await done;
    if (r.code !== 0) console.error('SERVICE EXIT', r.code, r.stderr.slice(-2000), out.slice(-2000));
    expect(r.code).toBe(0);
    expect(out).toContain('targets left in place');
    expect(Number(await tools.read(keys(1).target))).toBe(target);

    // Restart: state comes back from xl + xenstore; the same report needs no new target.
    // This time with service.fifoPriority: the main thread alone goes real-time.
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as { service: Record<string, unknown> };
    writeFileSync(path.join(dir, 'config-fifo.json'), JSON.stringify({ ...cfg, service: { ...cfg.service, fifoPriority: 1 } }));
    const again = cli(['run', '--config', path.join(dir, 'config-fifo.json')]);
    const done2 = finished(again);
    let out2 = '';
    again.stdout!.on('data', (d) => (out2 += d));
    await until(() => out2.includes('manager started') && out2.includes('"domain found"') , 'restarted');
    await until(() => out2.includes('"guest signal"'), 'report read again');
    await until(() => out2.includes('"main thread scheduling"'), 'scheduling line');
    if (process.getuid?.() === 0) {
      expect(out2).toContain('"scheduling":"SCHED_FIFO 1"');
      const threads = readdirSync(`/proc/${again.pid}/task`).map(Number);
      const policies = await Promise.all(threads.map((t) => schedulingPolicyOf(t)));
      expect(policies[threads.indexOf(again.pid!)]).toBe(1);
      // node's helper threads (V8 platform workers, the tsx loader) were left ordinary.
      expect(policies.filter((p) => p === 0).length).toBe(threads.length - 1);
    } else {
      expect(out2).toMatch(/"scheduling":"off: chrt failed/);
    }
    await new Promise((res) => setTimeout(res, 300));
    expect(Number(await tools.read(keys(1).target))).toBe(target);
    again.kill('SIGTERM');
    expect((await done2).code).toBe(0);
  }, 60_000);
});
