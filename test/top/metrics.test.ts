import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { startStateServer, type StateServer } from '../../dom0/state/server.js';
import type { DecisionLog } from '../../src/schemas/state.js';
import { FakeSource, hostState, vm } from './fixtures.js';
import { httpGet, tempDir } from './helpers.js';
import { parsePromText, pick } from './prom-text.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let sock: string;
let server: StateServer | null = null;

beforeEach(async () => {
  tmp = await tempDir();
  sock = path.join(tmp.dir, 'state.sock');
});
afterEach(async () => {
  await server?.close();
  server = null;
  await tmp.cleanup();
});

async function scrape(target: { socketPath: string } | { port: number } = { socketPath: sock }) {
  const res = await httpGet(target, '/metrics');
  expect(res.status).toBe(200);
  expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePromText(res.body);
}

describe('Prometheus metrics', () => {
  it('exposes every VM and host gauge with the state values, in base units', async () => {
    const state = hostState();
    server = await startStateServer(new FakeSource(state), { socketPath: sock });
    const { samples, types } = await scrape();

    for (const v of state.vms) {
      const l = { vm: v.name, domid: String(v.domid) };
      expect(pick(samples, 'xmem_vm_actual_bytes', l)).toBe(v.actualKib * 1024);
      expect(pick(samples, 'xmem_vm_target_bytes', l)).toBe(v.targetKib === null ? undefined : v.targetKib * 1024);
      expect(pick(samples, 'xmem_vm_ideal_bytes', l)).toBe(v.idealKib === null ? undefined : v.idealKib * 1024);
      expect(pick(samples, 'xmem_vm_floor_bytes', l)).toBe(v.floorKib === null ? undefined : v.floorKib * 1024);
      expect(pick(samples, 'xmem_vm_maxmem_bytes', l)).toBe(v.maxmemKib * 1024);
      expect(pick(samples, 'xmem_vm_psi_some_avg10_ratio', l)).toBe(v.psiSome10 === null ? undefined : v.psiSome10 / 100);
      expect(pick(samples, 'xmem_vm_psi_full_avg10_ratio', l)).toBe(v.psiFull10 === null ? undefined : v.psiFull10 / 100);
      for (const flag of v.flags) expect(pick(samples, 'xmem_vm_flag', { ...l, flag })).toBe(1);
    }
    expect(samples.filter((s) => s.name === 'xmem_vm_actual_bytes')).toHaveLength(state.vms.length);
    expect(pick(samples, 'xmem_vm_flag', { vm: 'work', flag: 'stuck' })).toBeUndefined();
    expect(pick(samples, 'xmem_host_total_bytes')).toBe(state.host.totalKib * 1024);
    expect(pick(samples, 'xmem_host_free_bytes')).toBe(state.host.freeKib * 1024);
    expect(pick(samples, 'xmem_host_reserved_bytes')).toBe(0);
    expect(pick(samples, 'xmem_vms')).toBe(4);
    expect(types.get('xmem_vm_actual_bytes')).toBe('gauge');
    expect(types.get('xmem_decisions_total')).toBe('counter');
    expect(types.get('xmem_refusals_total')).toBe('counter');
  });

  it('counts every decision and refusal event once, however far the window slides, and forgets departed VMs', async () => {
    const s1 = hostState();
    const source = new FakeSource(s1);
    server = await startStateServer(source, { socketPath: sock });
    let { samples } = await scrape();
    // The window a state carries is history from before this server: not counted.
    expect(pick(samples, 'xmem_decisions_total', { vm: 'work', direction: 'grow' })).toBeUndefined();
    expect(pick(samples, 'xmem_refusals_total')).toBe(0);

    const at = s1.atMs + 5000;
    const decision = (i: number, fromKib: number, toKib: number): DecisionLog => ({ atMs: at + i, domid: 3, name: 'work', fromKib, toKib, reason: `step ${i}` });
    // 250 changes between two scrapes: more than the 100-entry window a state carries.
    for (let i = 0; i < 250; i++) source.decide(i % 2 === 0 ? decision(i, 2048, 2500) : decision(i, 2500, 2048));
    source.decide({ atMs: at, domid: 5, name: 'browser', fromKib: 3000, toKib: 3000, reason: 'pinned' });
    source.refuse({ atMs: at, forName: 'big', neededKib: 8 << 20, reason: 'would push work below its floor' });
    source.push(
      hostState({
        atMs: at,
        host: { ...s1.host, reservedKib: 2048 * 1024 },
        vms: s1.vms.filter((v) => v.name !== 'anon').concat(vm({ domid: 9, name: 'new-vm', actualKib: 512 * 1024 })),
        decisions: s1.decisions.slice(1),
        refusals: [{ atMs: at, forName: 'big', neededKib: 8 << 20, reason: 'would push work below its floor' }],
      }),
    );
    ({ samples } = await scrape());
    expect(pick(samples, 'xmem_decisions_total', { vm: 'work', direction: 'grow' })).toBe(125);
    expect(pick(samples, 'xmem_decisions_total', { vm: 'work', direction: 'shrink' })).toBe(125);
    expect(pick(samples, 'xmem_decisions_total', { vm: 'browser', direction: 'hold' })).toBe(1);
    expect(pick(samples, 'xmem_refusals_total')).toBe(1);
    expect(pick(samples, 'xmem_host_reserved_bytes')).toBe(2048 * 1024 * 1024);
    expect(pick(samples, 'xmem_vm_actual_bytes', { vm: 'anon' })).toBeUndefined();
    expect(pick(samples, 'xmem_vm_actual_bytes', { vm: 'new-vm', domid: '9' })).toBe(512 * 1024 * 1024);

    // More states (passes that changed nothing): the windows they carry are not counted again.
    source.push(source.current());
    source.push(hostState({ atMs: at + 1000 }));
    ({ samples } = await scrape());
    expect(pick(samples, 'xmem_decisions_total', { vm: 'work', direction: 'shrink' })).toBe(125);
    expect(pick(samples, 'xmem_refusals_total')).toBe(1);
  });

  it('serves the same metrics on a loopback TCP port only when configured', async () => {
    server = await startStateServer(new FakeSource(hostState()), { socketPath: sock });
    expect(server.tcpAddress).toBeNull();
    await server.close();
    server = await startStateServer(new FakeSource(hostState()), { socketPath: sock, tcpPort: 0 });
    expect(server.tcpAddress?.address).toBe('127.0.0.1');
    const { samples } = await scrape({ port: server.tcpAddress!.port });
    expect(pick(samples, 'xmem_vm_actual_bytes', { vm: 'dom0' })).toBe(4096 * 1024 * 1024);
  });
});
