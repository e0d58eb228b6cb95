import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { connectGuest } from '../peer/guest.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import type { HostSnapshot, PolicyResult, VmDecision } from '../../src/policy/types.js';
import { keys } from '../../dom0/manager/keys.js';
import { report } from './helpers.js';
import { GiB, MiB, makeRig, nextWrite, type Rig } from './rig.js';

/**
 * The manager's loop against the REAL C xenstored (test/peer harness), with the scripted host
 * for the Xen calls. Each test builds its own rig on this file's daemon.
 */

const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/manager/loop.test.ts: real xenstored unavailable (${skip})`);

/** A scripted policy (the real one is POLICY's and tested there): fixed targets per domid. */
function fixedPolicy(targets: Record<number, number>, seen?: HostSnapshot[]) {
  return (s: HostSnapshot): PolicyResult => {
    seen?.push(s);
    const decisions: VmDecision[] = s.vms.map((vm) => {
      const t = targets[vm.domid] ?? vm.targetKib ?? vm.actualKib;
      const change = vm.targetKib === null || t === vm.targetKib ? 'hold' : t > vm.targetKib ? 'grow' : 'shrink';
      return {
        domid: vm.domid, name: vm.name, idealKib: t, floorKib: 0, targetKib: t, maxmemKib: t + 1024,
        change, reason: `scripted target for ${vm.name}`, managed: !vm.stuck,
      };
    });
    return { decisions, summary: 'scripted', history: {} };
  };
}

describe.skipIf(skip !== null)('manager loop on the real C xenstored', () => {
  let daemon: PeerDaemon;
  let rig: Rig | null = null;

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });
  afterEach(async () => {
    await rig?.close();
    rig = null;
    // A fresh tree for the next test: the daemon is shared by the file.
    const xs = await connectXenstore({ path: daemon.socketPath });
    await xs.rm('/local').catch(() => {});
    await xs.close();
  });

  const twoVms = () => [
    { domid: 0, name: 'Domain-0', actualKib: 2 * GiB, maxmemKib: 2 * GiB + 1024, staticMaxKib: 2 * GiB },
    { domid: 1, name: 'work', actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024, staticMaxKib: 4 * GiB },
    { domid: 2, name: 'untrusted', actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024, staticMaxKib: 4 * GiB },
  ];

  it('a guest report arrives → the policy runs → memory/target is written, logged with its reason', async () => {
    rig = await makeRig({ socketPath: daemon.socketPath, totalKib: 16 * GiB, domains: twoVms() });
    await rig.waitFor(() => rig!.passes.length > 0, 'first pass');
    // StateSource events: one 'decision' per target change, one 'change' per pass.
    const events: { decision: { name: string; toKib: number }[]; change: number } = { decision: [], change: 0 };
    rig.manager.on('decision', (d: { name: string; toKib: number }) => events.decision.push(d));
    rig.manager.on('change', () => events.change++);
    const passesBefore = rig.passes.length;
    const written = nextWrite(rig.tools, keys(1).target);
    await rig.writeReport(1, report({ seq: 1, total: 3 * GiB, commit: 2_500 * MiB, anon: 2 * GiB, free: 100 * MiB, avail: 400 * MiB, bcur: 1 * GiB, btgt: 1 * GiB }));
    const value = Number(await written);
    const decision = rig.manager.lastDecisions().find((d) => d.domid === 1)!;
    expect(value).toBe(decision.targetKib);
    expect(value).not.toBe(1 * GiB);
    const line = await rig.waitFor(() => rig!.logs.find((l) => l.msg === 'balanced' && JSON.stringify(l.changes).includes('"work"')), 'balanced log line');
    const change = (line.changes as { vm: string; to: number; reason: string }[]).find((c) => c.vm === 'work')!;
    expect(change.to).toBe(value);
    expect(change.reason).toBe(decision.reason);
    expect(change.reason.length).toBeGreaterThan(0);
    const vmState = rig.manager.state().vms.find((v) => v.domid === 1)!;
    expect(vmState).toMatchObject({ signal: 'xmem', targetKib: value, reason: decision.reason });
    const changes = rig.passes.slice(passesBefore).flatMap((p) => p.changes);
    expect(events.decision.map((d) => [d.name, d.toKib])).toEqual(changes.map((c) => [c.name, c.toKib]));
    expect(events.decision).toContainEqual(expect.objectContaining({ name: 'work', toKib: value }));
    expect(events.change).toBe(rig.passes.length - passesBefore);
  });

  it('bad, oversized and garbage reports from one VM: one log line, no effect on the other VM, loop alive', async () => {
    const seen: HostSnapshot[] = [];
    rig = await makeRig({ socketPath: daemon.socketPath, totalKib: 16 * GiB, domains: twoVms(), decide: fixedPolicy({ 1: 1536 * MiB }, seen) });
    await rig.waitFor(() => rig!.passes.length > 0, 'first pass');
    for (const garbage of ['\u0000\u0001binary', '{"v":1', 'x'.repeat(2000), JSON.stringify({ ...report(), seq: -5 })]) {
      await rig.tools.write(keys(2).report, garbage);
    }
    await rig.writeReport(1, report({ seq: 7 }));
    await rig.waitFor(async () => (await rig!.target(1)) === 1536 * MiB, 'vm1 target');
    // Both in the same snapshot: vm1's good report is used while vm2's garbage is dropped.
    await rig.waitFor(() => {
      const last = seen.at(-1);
      return last?.vms.find((v) => v.domid === 1)?.signal.kind === 'xmem' && last.vms.find((v) => v.domid === 2)?.signal.kind === 'none';
    }, 'vm1 xmem and vm2 none');
    const vm2 = rig.manager.state().vms.find((v) => v.domid === 2)!;
    expect(vm2.flags).toContain('bad-report');
    const vm2Lines = rig.logs.filter((l) => l.msg === 'guest signal' && l.domid === 2 && l.to === 'bad');
    expect(vm2Lines).toHaveLength(1);
    expect(JSON.stringify(rig.logs)).not.toContain('xxxxxxxx');
    // Still alive: a later good report from vm2 is accepted.
    await rig.writeReport(2, report({ seq: 1 }));
    await rig.waitFor(() => rig!.manager.state().vms.find((v) => v.domid === 2)?.signal === 'xmem', 'vm2 recovered');
    expect(rig.passes.every((p) => p.error === null)).toBe(true);
  });

  it('a stale report is dropped: the VM goes to the safe target for "no signal", flagged stale', async () => {
    const seen: HostSnapshot[] = [];
    rig = await makeRig({
      socketPath: daemon.socketPath, totalKib: 16 * GiB, domains: twoVms(),
      service: { sweepIntervalMs: 100 }, policy: { staleReportMs: 300 },
      decide: (s) => {
        seen.push(s);
        const vm1 = s.vms.find((v) => v.domid === 1)!;
        return fixedPolicy({ 1: vm1.signal.kind === 'none' ? 1 * GiB : 2 * GiB })(s);
      },
    });
    await rig.writeReport(1, report({ seq: 1 }));
    await rig.waitFor(async () => (await rig!.target(1)) === 2 * GiB, 'target while fresh');
    await rig.waitFor(async () => (await rig!.target(1)) === 1 * GiB, 'safe target once stale', 3000);
    const vm1 = seen.at(-1)!.vms.find((v) => v.domid === 1)!;
    expect(vm1.signal).toMatchObject({ kind: 'none' });
    expect(rig.manager.state().vms.find((v) => v.domid === 1)!.flags).toContain('stale');
    expect(rig.logs.filter((l) => l.msg === 'guest signal' && l.domid === 1 && l.to === 'stale')).toHaveLength(1);
  });

  it('free before allocate: the donor shrinks, Xen free memory is awaited, then maxmem is raised, then the target', async () => {
    // Host exactly full: 64 MiB free (the reserve), so vm2 can only grow from vm1's memory.
    const domains = twoVms();
    const total = domains.reduce((s, d) => s + d.actualKib, 0) + 64 * MiB;
    rig = await makeRig({
      socketPath: daemon.socketPath, totalKib: total, domains,
      decide: fixedPolicy({ 1: 512 * MiB, 2: 1536 * MiB }),
    });
    await rig.waitFor(async () => (await rig!.target(2)) === 1536 * MiB, 'vm2 grown');
    const o = rig.order;
    const shrink = o.indexOf(`target:1:${512 * MiB}`);
    const lower = o.indexOf(`maxmem:1:${512 * MiB + 1024}`);
    const raise = o.indexOf(`maxmem:2:${1536 * MiB + 1024}`);
    const grow = o.indexOf(`target:2:${1536 * MiB}`);
    expect(shrink).toBeGreaterThanOrEqual(0);
    expect(lower).toBeGreaterThan(shrink); // ceiling lowered only after the cut
    expect(raise).toBeGreaterThan(shrink);
    expect(o.slice(shrink, raise)).toContain('facts'); // waited for the freed memory
    expect(grow).toBeGreaterThan(raise); // maxmem raised before the target raise
    // The bounded wait happens inside the pass: the shrink and the grow land in the same pass.
    expect(rig.passes.some((p) => p.changes.some((c) => c.domid === 1 && c.phase === 'shrink')
      && p.changes.some((c) => c.domid === 2 && c.phase === 'grow'))).toBe(true);
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(64 * MiB);
  });

  it('grows wait for free memory and never take the 64 MiB reserve', async () => {
    const domains = twoVms();
    const total = domains.reduce((s, d) => s + d.actualKib, 0) + 64 * MiB + 100 * MiB;
    rig = await makeRig({ socketPath: daemon.socketPath, totalKib: total, domains, decide: fixedPolicy({ 2: 2 * GiB }) });
    await rig.waitFor(async () => (await rig!.target(2)) !== 1 * GiB, 'vm2 partial grow');
    expect(await rig.target(2)).toBe(1 * GiB + 100 * MiB);
    await rig.waitFor(() => rig!.host.domain(2)!.actualKib === 1 * GiB + 100 * MiB, 'vm2 grown into it');
    expect(rig.host.freeKib()).toBe(64 * MiB);
    // Later passes find nothing more to give: the reserve stays free.
    rig.manager.requestPass();
    await rig.waitFor(() => rig!.passes.length >= 3, 'more passes');
    expect(rig.host.freeKib()).toBe(64 * MiB);
  });

  it('paused VMs are never touched', async () => {
    const domains = twoVms();
    domains[1] = { ...domains[1]!, paused: true } as (typeof domains)[number];
    rig = await makeRig({ socketPath: daemon.socketPath, totalKib: 16 * GiB, domains, decide: fixedPolicy({ 1: 2 * GiB, 2: 2 * GiB }) });
    await rig.waitFor(async () => (await rig!.target(2)) === 2 * GiB, 'vm2 target');
    expect(await rig.target(1)).toBe(1 * GiB);
    expect(rig.order.some((c) => c.startsWith('maxmem:1:') || c.startsWith('target:1:'))).toBe(false);
  });

  it('stuck detection: no progress for stuckAfterMs → stuck, excluded, shown; cleared when it moves', async () => {
    const seen: HostSnapshot[] = [];
    const domains = twoVms();
    rig = await makeRig({
      socketPath: daemon.socketPath, totalKib: 16 * GiB,
      domains: domains.map((d) => (d.domid === 1 ? { ...d, balloon: { kind: 'stuck' as const } } : d)),
      service: { stuckAfterMs: 300, convergePollMs: 50 },
      decide: fixedPolicy({ 1: 512 * MiB }, seen),
    });
    await rig.waitFor(() => rig!.manager.state().vms.find((v) => v.domid === 1)?.flags.includes('stuck'), 'stuck flag');
    await rig.waitFor(() => seen.at(-1)?.vms.find((v) => v.domid === 1)?.stuck, 'policy told it is stuck');
    expect(rig.logs.some((l) => String(l.msg).startsWith('VM stuck'))).toBe(true);
    rig.host.update(1, { balloon: { kind: 'instant' } });
    rig.manager.requestPass();
    await rig.waitFor(() => !rig!.manager.state().vms.find((v) => v.domid === 1)?.flags.includes('stuck'), 'stuck cleared');
    expect(rig.host.domain(1)!.actualKib).toBe(512 * MiB);
  });

  it('a pass that throws (host or policy) is logged and the loop carries on', async () => {
    let throwOnce = true;
    const policy = fixedPolicy({ 1: 1536 * MiB });
    rig = await makeRig({
      socketPath: daemon.socketPath, totalKib: 16 * GiB, domains: twoVms(),
      decide: (s, c) => {
        if (throwOnce) {
          throwOnce = false;
          throw new Error('policy exploded');
        }
        return policy(s, c);
      },
    });
    await rig.waitFor(() => rig!.passes.some((p) => p.error === 'policy exploded'), 'failed pass');
    rig.host.failNextFacts(new Error('xl died'));
    rig.manager.requestPass();
    await rig.waitFor(() => rig!.passes.some((p) => p.error === 'xl died'), 'second failed pass');
    await rig.writeReport(1, report({ seq: 3 }));
    await rig.waitFor(async () => (await rig!.target(1)) === 1536 * MiB, 'target after failures');
    expect(rig.logs.filter((l) => l.msg === 'pass failed; loop continues')).toHaveLength(2);
  });

  it('a new domain is discovered; its Qubes keys are granted to it (owner dom0, b<domid>)', async () => {
    rig = await makeRig({ socketPath: daemon.socketPath, totalKib: 16 * GiB, domains: twoVms(), service: { sweepIntervalMs: 100 } });
    await rig.waitFor(() => rig!.passes.length > 0, 'first pass');
    const d = { domid: 7, name: 'late', actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024, staticMaxKib: 2 * GiB };
    const { createDomainNodes } = await import('./rig.js');
    await createDomainNodes(rig.tools, d);
    rig.host.add(d);
    await rig.waitFor(() => rig!.manager.state().vms.some((v) => v.domid === 7), 'domain 7 in state');
    expect(await rig.tools.getPerms(keys(7).qubes)).toEqual([{ domid: 0, access: 'n' }, { domid: 7, access: 'b' }]);
    expect(await rig.tools.getPerms(keys(7).qubesSwap)).toEqual([{ domid: 0, access: 'n' }, { domid: 7, access: 'b' }]);
    expect(await rig.tools.read(keys(7).xmemStaticMax)).toBe(String(2 * GiB));
    rig.host.remove(7);
    await rig.waitFor(() => !rig!.manager.state().vms.some((v) => v.domid === 7), 'domain 7 gone');
  });

  it('a real guest is introduced (@introduceDomain): its Qubes keys are writable by it, and its reports drive it', async () => {
    rig = await makeRig({ socketPath: daemon.socketPath, totalKib: 16 * GiB, domains: twoVms() });
    await rig.waitFor(() => rig!.passes.length > 0, 'first pass');
    const passesBefore = rig.passes.length;
    // Xen knows the domain before the toolstack introduces it to xenstored.
    rig.host.add({ domid: 9, name: 'guest9', actualKib: 1 * GiB, maxmemKib: 1 * GiB + 1024 });
    const guest = await connectGuest(daemon, 9, { name: 'guest9', targetKib: 1 * GiB, staticMaxKib: 4 * GiB });
    try {
      await rig.waitFor(() => rig!.manager.state().vms.some((v) => v.domid === 9), 'introduced domain balanced', 5000);
      expect(rig.passes.length).toBeGreaterThan(passesBefore);
      // As stock meminfo-writer does: relative path, digits only, written by the guest itself.
      await rig.waitFor(async () => (await rig!.tools.tryRead(keys(9).qubes)) !== null, 'key granted');
      await guest.xs.write('memory/meminfo', String(700 * MiB));
      await rig.waitFor(() => rig!.manager.state().vms.find((v) => v.domid === 9)?.signal === 'qubes', 'qubes signal');
      await expect(guest.xs.write('memory/target', '1')).rejects.toMatchObject({ errno: 'EACCES' });
      await guest.xs.write('data/xmem', JSON.stringify(report({ seq: 1 })));
      await rig.waitFor(() => rig!.manager.state().vms.find((v) => v.domid === 9)?.signal === 'xmem', 'xmem signal');
    } finally {
      rig.host.remove(9);
      await guest.close();
    }
  });

  it('xenstored killed and restarted: the manager reconnects, rebuilds from xenstore and resumes', async () => {
    const domains = twoVms();
    rig = await makeRig({
      socketPath: daemon.socketPath, totalKib: 16 * GiB, domains,
      service: { sweepIntervalMs: 200 },
      decide: fixedPolicy({ 1: 1536 * MiB }),
      reconnect: () => connectXenstore({ path: daemon.socketPath }),
    });
    await rig.waitFor(async () => (await rig!.target(1)) === 1536 * MiB, 'target before restart');
    await daemon.restart();
    // The restarted daemon starts empty, as after a real restart without live update: the
    // toolstack re-creates the domains' nodes.
    const { createDomainNodes } = await import('./rig.js');
    const tools = await connectXenstore({ path: daemon.socketPath });
    for (const d of domains) await createDomainNodes(tools, d);
    await rig.waitFor(() => rig!.logs.some((l) => l.msg === 'xenstore reconnected; rebuilding state from Xen and xenstore'), 'reconnect', 10_000);
    // Rebuilt from xenstore: target 1 GiB again there → the manager sets it back.
    await rig.waitFor(async () => (await tools.tryRead(keys(1).target)) === String(1536 * MiB), 'target after restart', 10_000);
    await tools.close();
    await rig.tools.close().catch(() => {});
    rig.tools = await connectXenstore({ path: daemon.socketPath });
  });
});
