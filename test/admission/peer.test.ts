import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { AdmissionConnection } from '../../dom0/admission/client.js';
import { ReleaseReplySchema, ReserveReplySchema, type ReserveReply } from '../../dom0/admission/protocol.js';
import { keys } from '../../dom0/manager/keys.js';
import { makeAdmitRig, type AdmitDomain, type AdmitRig } from './rig.js';
import { createDomainNodes } from '../manager/rig.js';
import { rawConnect } from './sockets.js';
import { GiB, MiB } from './helpers.js';

/**
 * Admission end to end: the real Manager and policy on the REAL C xenstored (test/peer), a
 * scripted host for Xen and the balloons, clients on the real sockets, the real `xmem` CLI.
 */

const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/admission/peer.test.ts: real xenstored unavailable (${skip})`);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = (args: string[]) => execa(process.execPath, ['--import', 'tsx', path.join(root, 'dom0/cli.ts'), ...args], { cwd: root, reject: false });

const rate = (kibPerCall: number) => ({ kind: 'rate' as const, kibPerCall });

/** 16 GiB host; after the first passes the policy hands all but 64 MiB to the VMs. */
const host16 = (): AdmitDomain[] => [
  { domid: 0, name: 'Domain-0', actualKib: 2 * GiB, maxmemKib: 2 * GiB + 1024, staticMaxKib: 4 * GiB, usedKib: 1 * GiB, balloon: rate(256 * MiB) },
  { domid: 1, name: 'work', actualKib: 6 * GiB, maxmemKib: 6 * GiB + 1024, staticMaxKib: 8 * GiB, usedKib: 1 * GiB, balloon: rate(256 * MiB) },
  { domid: 2, name: 'personal', actualKib: 4 * GiB, maxmemKib: 4 * GiB + 1024, staticMaxKib: 8 * GiB, usedKib: 1536 * MiB, balloon: rate(256 * MiB) },
];

async function reserve(rig: AdmitRig, req: { bytes: number; for: string; timeoutS?: number }): Promise<ReserveReply> {
  const c = await AdmissionConnection.connect(rig.admissionSocket);
  try {
    return await c.request({ op: 'reserve', detach: true, ...req }, ReserveReplySchema);
  } finally {
    c.close();
  }
}

/** Waits until the policy has handed out the free memory (steady state: free ≈ the reserve). */
async function settled(rig: AdmitRig): Promise<void> {
  await rig.waitFor(() => {
    const s = rig.manager.lastSnapshot();
    return s && rig.manager.lastDecisions().every((d) => d.managed) && s.freeKib < 128 * MiB && s.vms.every((v) => v.targetKib === null || Math.abs(v.actualKib - v.targetKib) < 16 * MiB);
  }, 'the host to settle');
}

describe.skipIf(skip !== null)('admission on the real C xenstored with the real manager', () => {
  let daemon: PeerDaemon;
  let rig: AdmitRig | null = null;

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
  });
  afterAll(async () => {
    await daemon?.stop();
  });
  afterEach(async () => {
    await rig?.close();
    rig = null;
  });

  it('fits at once: free memory covers it; the policy then keeps it free', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16(), service: { sweepIntervalMs: 60_000 } });
    // Before the first pass hands it out there are 4 GiB free.
    const r = await reserve(rig, { bytes: 1 * 1024 ** 3, for: 'new' });
    if (!r.ok) throw new Error(r.message);
    expect(r.how).toBe('fits-now');
    await rig.waitFor(() => rig!.manager.lastSnapshot()?.reservations.some((x) => x.id === r.id), 'the policy to see the reservation');
    await new Promise((res) => setTimeout(res, 500));
    // Balancing has handed out everything except the reserve and the reservation.
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(1 * GiB + 64 * MiB - 16 * MiB);
    expect(rig.manager.state().host.reservedKib).toBe(1 * GiB);
  });

  it('fits after squeezing: others give in proportion and end at or above their floors', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const before = new Map(rig.host.freeKib() ? rig.manager.lastSnapshot()!.vms.map((v) => [v.domid, v.actualKib]) : []);
    const r = await reserve(rig, { bytes: 3 * 1024 ** 3, for: 'new' });
    if (!r.ok) throw new Error(r.message);
    expect(r.how).toBe('squeezed');
    expect(r.freeKib).toBeGreaterThanOrEqual(3 * GiB + 25 * MiB);
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(3 * GiB + 25 * MiB);
    for (const d of [0, 1, 2]) {
      const now = rig.host.domain(d)!.actualKib;
      expect(now).toBeGreaterThanOrEqual(rig.floor(d));
      expect(now).toBeLessThanOrEqual(before.get(d)!);
    }
    // Every VM above its floor gave something.
    expect(r.donors.map((x) => x.name).sort()).toEqual(['Domain-0', 'personal', 'work']);
    // The state stream shows it (decorated by admission).
    const st = rig.server.decorate(rig.manager.state());
    expect(st.reservations).toEqual([expect.objectContaining({ id: r.id, forName: 'new', kib: 3 * GiB, state: 'held' })]);
  });

  it('refused below the floors, at once, with the amounts and the right shutdown set', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const snap = rig.manager.lastSnapshot()!;
    const floors = [0, 1, 2].map((d) => rig!.floor(d));
    const reclaimable = snap.vms.reduce((s, v, i) => s + Math.max(0, v.actualKib - floors[i]!), 0);
    const available = Math.max(0, snap.freeKib - 64 * MiB);
    // 700 MiB more than everything above the floors: only shutting down work (floor ~1.1 GiB)
    // or personal (~1.6 GiB) makes it fit; work is the smaller suggestion, both are alternatives.
    const needKib = available + reclaimable + 700 * MiB;
    const t0 = Date.now();
    const r = await reserve(rig, { bytes: needKib * 1024, for: 'big' });
    if (r.ok) throw new Error('expected a refusal');
    expect(Date.now() - t0).toBeLessThan(2500); // at once: no squeeze, no 3 s rate window
    expect(r.kind).toBe('below-floors');
    expect(r.refusal!.neededKib).toBe(needKib);
    expect(r.refusal!.missingKib).toBe(700 * MiB);
    expect(r.refusal!.reclaimableKib).toBe(reclaimable);
    expect(r.refusal!.shutdown!.map((c) => c.name)).toEqual(['work']);
    expect(r.refusal!.shutdownAlternatives.map((c) => c.name)).toEqual(['work', 'personal']);
    expect(r.message).toMatch(/shut down work or personal to free 700 MiB$/);
    expect(rig.book.list()).toEqual([]);
    expect(rig.server.decorate(rig.manager.state()).refusals).toEqual([expect.objectContaining({ forName: 'big', neededKib: needKib })]);
    // The CLI says the same, exits 1.
    const out = await cli(['reserve', `${needKib * 1024}`, '--for', 'big', '--socket', rig.admissionSocket]);
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toMatch(/to start it: shut down work or personal to free 700 MiB/);
  });

  it('two concurrent requests are served one after the other and both hold their memory', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const [a, b] = await Promise.all([
      reserve(rig, { bytes: 2 * 1024 ** 3, for: 'a' }),
      reserve(rig, { bytes: 2 * 1024 ** 3, for: 'b' }),
    ]);
    if (!a.ok || !b.ok) throw new Error(`${a.message} / ${b.message}`);
    // Serialized: b's squeeze started after a was held, and had to free on top of it.
    expect(b.freeKib).toBeGreaterThanOrEqual(4 * GiB + 25 * MiB);
    expect(rig.book.list().map((x) => [x.forName, x.state])).toEqual([['a', 'held'], ['b', 'held']]);
    await new Promise((res) => setTimeout(res, 300));
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(4 * GiB);
  });

  // Once failed (scarcity-storm, 3 breaches): VMs still growing toward targets raised before a
  // start request were held only by the pass that saw the booked reservation, so until then
  // their balloons took the free memory the start was planned on. qmemman locks on arrival.
  it('a start request holds VMs still growing at their allocation before it plans or squeezes; they grow again once it is released', async () => {
    const doms: AdmitDomain[] = [
      ...host16().slice(0, 2),
      // Its balloon crawls (8 MiB per look): the target the policy raises stays ahead for seconds.
      { domid: 2, name: 'grower', actualKib: 2 * GiB, maxmemKib: 2 * GiB + 1024, staticMaxKib: 8 * GiB, usedKib: 1536 * MiB, balloon: rate(8 * MiB) },
    ];
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: doms });
    const grower = () => rig!.host.domain(2)!;
    await rig.waitFor(() => grower().actualKib > 2 * GiB + 16 * MiB && (grower().targetKib ?? 0) > grower().actualKib + 512 * MiB, 'the grower to be growing');
    const events: ({ at: 'target'; domid: number; kib: number; actualKib: number } | { at: 'request' | 'booked' | 'answered' })[] = [];
    const observe = rig.host.observeTarget.bind(rig.host);
    rig.host.observeTarget = (domid, kib) => {
      events.push({ at: 'target', domid, kib, actualKib: rig!.host.domain(domid)?.actualKib ?? 0 });
      observe(domid, kib);
    };
    rig.book.on('change', () => {
      if (rig!.book.list().length > 0 && !events.some((e) => e.at === 'booked')) events.push({ at: 'booked' });
    });

    // 1 GiB more than is free now (what the grower has yet to take included): a squeeze.
    const needKib = rig.host.freeKib() - 64 * MiB + 1 * GiB;
    events.push({ at: 'request' });
    const r = await reserve(rig, { bytes: needKib * 1024, for: 'new' });
    events.push({ at: 'answered' });
    if (!r.ok) throw new Error(r.message);
    expect(r.how).toBe('squeezed');
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(needKib + 25 * MiB);

    const booked = events.findIndex((e) => e.at === 'booked');
    const answered = events.findIndex((e) => e.at === 'answered');
    const writes = (from: number, to: number) => events.slice(from, to).flatMap((e) => (e.at === 'target' ? [e] : []));
    // Before the reservation was even booked (so before any squeeze), the grower was held at
    // what it had: its target written down to its allocation.
    expect(booked).toBeGreaterThan(0);
    expect(writes(0, booked).some((w) => w.domid === 2 && w.kib <= w.actualKib + 1024)).toBe(true);
    // From the request to the answer, no target was raised above an allocation: nothing grew.
    expect(writes(0, answered).filter((w) => w.kib > w.actualKib + 1024)).toEqual([]);
    expect(rig.logs.some((l) => l.msg === 'VMs still growing held at their allocation for a VM start' && (l.held as string[]).includes('grower'))).toBe(true);

    // Once the reservation is gone, growth is balanced normally again.
    const heldAt = grower().actualKib;
    const c = await AdmissionConnection.connect(rig.admissionSocket);
    try {
      expect((await c.request({ op: 'release', id: r.id }, ReleaseReplySchema)).ok).toBe(true);
    } finally {
      c.close();
    }
    await rig.waitFor(() => grower().actualKib > heldAt + 64 * MiB, 'the grower to grow again');
  });

  it('a client killed mid-reservation (xmem reserve --hold, SIGKILL) releases it', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'dom0/cli.ts'), 'reserve', '1G', '--for', 'victim', '--hold', '--socket', rig.admissionSocket], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await rig.waitFor(() => out.includes('held until this command exits'), 'xmem reserve --hold to report the reservation', 15_000);
    expect(rig.book.list().map((x) => x.forName)).toEqual(['victim']);
    child.kill('SIGKILL');
    await rig.waitFor(() => rig!.book.list().length === 0, 'the reservation to be released');
    await rig.waitFor(() => rig!.manager.lastSnapshot()?.reservations.length === 0, 'the policy to drop it');
  });

  it('timeout: a reservation nobody releases expires, and balancing takes the memory back', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const r = await reserve(rig, { bytes: 1 * 1024 ** 3, for: 'slow', timeoutS: 1.5 });
    if (!r.ok) throw new Error(r.message);
    expect(rig.host.freeKib()).toBeGreaterThan(1 * GiB);
    await rig.waitFor(() => rig!.book.list().length === 0, 'the reservation to expire', 5000);
    await settled(rig);
    expect(rig.logs.some((l) => l.msg === 'reservation expired')).toBe(true);
  });

  it('a stuck donor the others can make up for: flagged stuck within the rate window, the squeeze re-plans and succeeds', async () => {
    // work uses more, so it holds most of the surplus when its balloon driver stops answering.
    const doms = host16().map((d) => (d.name === 'work' ? { ...d, usedKib: 3 * GiB } : d));
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: doms });
    await settled(rig);
    rig.host.update(1, { balloon: { kind: 'stuck' } });
    const t0 = Date.now();
    const r = await reserve(rig, { bytes: 5 * 1024 ** 3, for: 'new' });
    if (!r.ok) throw new Error(r.message);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000); // one rate window before the re-plan
    expect(rig.manager.state().vms.find((v) => v.name === 'work')?.flags).toContain('stuck');
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(5 * GiB);
  });

  it('a stuck donor the others cannot make up for: the squeeze fails early (~3 s, qmemman rate rule) and names it', async () => {
    const doms = host16();
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: doms });
    await settled(rig);
    // work holds most of the surplus, and now its balloon driver stops answering.
    rig.host.update(1, { balloon: { kind: 'stuck' } });
    const t0 = Date.now();
    const r = await reserve(rig, { bytes: 8 * 1024 ** 3, for: 'new' });
    const took = Date.now() - t0;
    if (r.ok) throw new Error('expected a failure');
    expect(r.kind).toBe('stalled');
    expect(r.stuck).toEqual(['work']);
    expect(r.message).toMatch(/: work did not give memory back/);
    expect(took).toBeGreaterThanOrEqual(3000);
    expect(took).toBeLessThan(8000);
    expect(rig.book.list()).toEqual([]);
  });

  it('qmemman.sock on the real manager: OK, memory kept free until close; set-mem writes memory/target', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const floor1 = rig.floor(1);
    const c = await rawConnect(rig.qmemmanSocket);
    c.socket.write(`${2 * 1024 ** 3}\n`);
    const got = (await c.waitBytes(3, 15_000)).toString('latin1');
    expect(got).toBe('OK\n');
    expect(rig.host.freeKib()).toBeGreaterThanOrEqual(2 * GiB + 25 * MiB);
    // A second qubesd request waits for the first connection to close.
    const d = await rawConnect(rig.qmemmanSocket);
    d.socket.write('1:0\n');
    await new Promise((res) => setTimeout(res, 400));
    expect(d.received().length).toBe(0);
    c.socket.end();
    expect((await d.waitBytes(3, 15_000)).toString('latin1')).toBe('OK\n');
    // The manager itself wrote work's target down to its floor (the pin), and work got there.
    expect(rig.book.pins().get(1)).toBe(floor1);
    expect(Number(await rig.tools.read(keys(1).target))).toBe(floor1);
    expect(rig.host.domain(1)!.actualKib).toBeLessThanOrEqual(1.1 * floor1);
    d.socket.end();
    await rig.waitFor(() => rig!.book.pins().size === 0, 'the pin to end with the connection');
  });

  it('qubesd flow: the domain created while the connection is open takes the reservation over (no second squeeze)', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const c = await rawConnect(rig.qmemmanSocket);
    c.socket.write(`${2 * 1024 ** 3}\n`);
    expect((await c.waitBytes(3, 15_000)).toString('latin1')).toBe('OK\n');
    const others = () => [0, 1, 2].reduce((s, d) => s + rig!.host.domain(d)!.actualKib, 0);
    const before = others();
    // qubesd: libvirt creates the domain, paused, with the memory it asked for.
    const vm = { domid: 5, name: 'disp1234', actualKib: 2 * GiB, maxmemKib: 2 * GiB + 1024, paused: true };
    await createDomainNodes(rig.tools, vm);
    rig.host.add(vm);
    rig.manager.requestPass();
    await rig.waitFor(() => rig!.manager.lastSnapshot()?.vms.some((v) => v.domid === 5), 'the manager to see the new domain');
    await rig.waitFor(() => rig!.book.reservations()[0]?.kib === 0, 'the domain to take the reservation over');
    await new Promise((res) => setTimeout(res, 600));
    expect(others()).toBeGreaterThanOrEqual(before - 32 * MiB);
    c.socket.end();
    await rig.waitFor(() => rig!.book.list().length === 0, 'release on close');
  });

  it('the CLI: reserve prints the decision and an id; release frees it; usage errors exit 2', async () => {
    rig = await makeAdmitRig({ xenstoredSocket: daemon.socketPath, totalKib: 16 * GiB, domains: host16() });
    await settled(rig);
    const out = await cli(['reserve', '512M', '--for', 'cli-vm', '--json', '--socket', rig.admissionSocket]);
    expect(out.exitCode).toBe(0);
    const reply = ReserveReplySchema.parse(JSON.parse(out.stdout));
    if (!reply.ok) throw new Error(reply.message);
    expect(rig.book.list().map((x) => x.id)).toEqual([reply.id]);
    const rel = await cli(['release', reply.id, '--socket', rig.admissionSocket]);
    expect([rel.exitCode, rel.stdout.trim()]).toEqual([0, `released ${reply.id}`]);
    expect(rig.book.list()).toEqual([]);
    expect((await cli(['release', reply.id, '--socket', rig.admissionSocket])).exitCode).toBe(1);
    expect((await cli(['reserve', 'lots', '--socket', rig.admissionSocket])).exitCode).toBe(2);
    expect((await cli(['reserve', '1G', '--for', 'bad name', '--socket', rig.admissionSocket])).exitCode).toBe(2);
    expect((await cli(['reserve', '--socket', rig.admissionSocket])).exitCode).toBe(2);
    expect((await cli(['release', 'nope', '--socket', rig.admissionSocket])).exitCode).toBe(2);
  }, 90_000);
});
