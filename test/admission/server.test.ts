import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { realClock } from '../../src/clock.js';
import { ReservationBook } from '../../dom0/admission/book.js';
import { startAdmissionServer, type AdmissionServer } from '../../dom0/admission/server.js';
import { AdmissionConnection } from '../../dom0/admission/client.js';
import { ListReplySchema, ReserveReplySchema } from '../../dom0/admission/protocol.js';
import { parseQmemmanRequest } from '../../dom0/admission/qmemman.js';
import type { StateSource } from '../../dom0/state/source.js';
import { FakeManager } from './fake-manager.js';
import { GiB, MiB, type VmSpec } from './helpers.js';
import { rawConnect, sleep } from './sockets.js';

/**
 * The two sockets over real unix sockets, with a stand-in manager (the real one runs in
 * peer.test.ts). Checks the qmemman.sock protocol byte for byte.
 */

const work: VmSpec & { kibPerPass?: number } = { domid: 1, name: 'work', actualKib: 4 * GiB, floorKib: 1 * GiB, kibPerPass: 512 * MiB };

let dir: string;
let server: AdmissionServer;
let manager: FakeManager;
let book: ReservationBook;

async function start(vms: (VmSpec & { kibPerPass?: number })[], freeKib: number, extra: Record<string, unknown> = {}) {
  book = new ReservationBook({ clock: realClock, timeoutMs: 30_000 });
  manager = new FakeManager(vms, freeKib, book.reservations, 64 * MiB, () => book.pins(), () => realClock.now());
  book.pinsWired = extra.pinsWired !== false;
  delete extra.pinsWired;
  server = await startAdmissionServer(manager, {
    book,
    clock: realClock,
    reserveKib: 64 * MiB,
    socketPath: path.join(dir, 'admission.sock'),
    qmemmanSocketPath: path.join(dir, 'qmemman.sock'),
    pollMs: 20,
    ...extra,
  });
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-admit-'));
});
afterEach(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('qmemman request parsing (qmemmand: recv(1024).strip())', () => {
  it.each([
    ['1048576\n', { kind: 'balloon', bytes: 1048576 }],
    ['  42 \r\n', { kind: 'balloon', bytes: 42 }],
    ['3:0\n', { kind: 'set-mem', targets: [{ domid: 3, bytes: 0 }] }],
    ['3:419430400 7:0\n', { kind: 'set-mem', targets: [{ domid: 3, bytes: 419430400 }, { domid: 7, bytes: 0 }] }],
    ['', { kind: 'invalid' }],
    ['-5\n', { kind: 'invalid' }],
    ['12 34\n', { kind: 'invalid' }],
    ['1e9\n', { kind: 'invalid' }],
    ['3:abc\n', { kind: 'invalid' }],
    ['3:1 junk\n', { kind: 'invalid' }],
    ['hello\n', { kind: 'invalid' }],
    ['99999999999999999999\n', { kind: 'invalid' }],
  ])('%j → %j', (raw, want) => {
    expect(parseQmemmanRequest(raw)).toEqual(want);
  });
});

describe('qmemman.sock', () => {
  it('"<bytes>\\n" → exactly "OK\\n"; the memory stays reserved until the client closes', async () => {
    await start([work], 2 * GiB);
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write(`${1 * GiB * 1024}\n`);
    expect((await c.waitBytes(3)).toString('latin1')).toBe('OK\n');
    expect(book.list().map((r) => r.kib)).toEqual([1 * GiB]);
    await sleep(100);
    expect(c.received().toString('latin1')).toBe('OK\n');
    expect(c.isClosed()).toBe(false);
    c.socket.end();
    await c.closed;
    await waitUntil(() => book.list().length === 0);
  });

  it('"<bytes>\\n" that does not fit → exactly "FAIL\\n"', async () => {
    await start([work], 64 * MiB);
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write(`${100 * GiB * 1024}\n`);
    expect((await c.waitBytes(5)).toString('latin1')).toBe('FAIL\n');
    expect(book.list()).toEqual([]);
    expect(book.refusals()[0]?.reason).toMatch(/^cannot reserve 100 GiB for qmemman-\d+: /);
    c.socket.end();
  });

  it('anything else → exactly "INVALID_ARG\\n"', async () => {
    await start([work], 2 * GiB);
    for (const bad of ['hello\n', '12 34\n', '\n', '3:x\n']) {
      const c = await rawConnect(path.join(dir, 'qmemman.sock'));
      c.socket.write(bad);
      expect((await c.waitBytes(12)).toString('latin1')).toBe('INVALID_ARG\n');
      c.socket.end();
      await c.closed;
    }
  });

  it('a request without a newline is still served (qmemman does a single recv)', async () => {
    await start([work], 2 * GiB);
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write('1048576');
    expect((await c.waitBytes(3)).toString('latin1')).toBe('OK\n');
    c.socket.end();
  });

  it('the lock is held until the client closes: a second client waits for it (even after INVALID_ARG)', async () => {
    await start([work], 8 * GiB);
    const first = await rawConnect(path.join(dir, 'qmemman.sock'));
    first.socket.write('bogus\n');
    expect((await first.waitBytes(12)).toString('latin1')).toBe('INVALID_ARG\n');
    const second = await rawConnect(path.join(dir, 'qmemman.sock'));
    second.socket.write('1048576\n');
    // JSON clients queue behind the same lock.
    const native = await AdmissionConnection.connect(path.join(dir, 'admission.sock'));
    const nativeReply = native.request({ op: 'reserve', bytes: 1 << 20, for: 'queued' }, ReserveReplySchema);
    await sleep(300);
    expect(second.received().length).toBe(0);
    expect(book.list()).toEqual([]);
    first.socket.end();
    expect((await second.waitBytes(3)).toString('latin1')).toBe('OK\n');
    await sleep(200);
    // Still held by the second qmemman client.
    expect(book.list().map((r) => r.forName)).toEqual([expect.stringMatching(/^qmemman-/)]);
    second.socket.end();
    expect((await nativeReply).ok).toBe(true);
    native.close();
  });

  it('a second request on the same connection closes it (qmemmand: "Second request over qmemman.sock?")', async () => {
    await start([work], 8 * GiB);
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write('1048576\n');
    await c.waitBytes(3);
    c.socket.write('1048576\n');
    await c.closed;
    expect(c.received().toString('latin1')).toBe('OK\n');
    await waitUntil(() => book.list().length === 0);
  });

  it('set-mem "<domid>:<bytes>" pins the domain for the policy and answers OK once it is within 10%', async () => {
    await start([work], 1 * GiB);
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write(`1:${2 * GiB * 1024}\n`);
    expect((await c.waitBytes(3)).toString('latin1')).toBe('OK\n');
    expect([...book.pins()]).toEqual([[1, 2 * GiB]]);
    expect(manager.specs[0]!.actualKib).toBeLessThanOrEqual(2.2 * GiB);
    // The pin lasts while the client holds the connection (qubesd pauses the VM meanwhile).
    c.socket.end();
    await waitUntil(() => book.pins().size === 0);
  });

  it("set-mem with 0 means the VM's floor (qmemman: its prefmem)", async () => {
    await start([work], 1 * GiB);
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write('1:0\n');
    expect((await c.waitBytes(3)).toString('latin1')).toBe('OK\n');
    expect([...book.pins()]).toEqual([[1, 1 * GiB]]);
    c.socket.end();
  });

  it('set-mem FAILs (and says why in the log) when the manager does not apply pins', async () => {
    await start([work], 1 * GiB, { pinsWired: false });
    const c = await rawConnect(path.join(dir, 'qmemman.sock'));
    c.socket.write('1:0\n');
    expect((await c.waitBytes(5)).toString('latin1')).toBe('FAIL\n');
    c.socket.end();
  });
});

describe('xmem admission socket (JSON lines)', () => {
  it('is 0600 by default and 0660 in the given group', async () => {
    await start([work], 2 * GiB);
    expect(statSync(path.join(dir, 'admission.sock')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dir, 'qmemman.sock')).mode & 0o777).toBe(0o600);
    await server.close();
    const gid = process.getgid!();
    await start([work], 2 * GiB, { group: gid });
    const st = statSync(path.join(dir, 'admission.sock'));
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(gid);
  });

  it('reserve → decision, list, release; invalid input answered, never a crash', async () => {
    await start([work], 2 * GiB);
    const c = await AdmissionConnection.connect(path.join(dir, 'admission.sock'));
    const r = await c.request({ op: 'reserve', bytes: 512 * 1024 * 1024, for: 'work2' }, ReserveReplySchema);
    if (!r.ok) throw new Error(r.message);
    expect(r.kib).toBe(512 * MiB);
    expect(r.how).toBe('fits-now');
    const l = await c.request({ op: 'list' }, ListReplySchema);
    expect(l.reservations.map((x) => [x.id, x.state])).toEqual([[r.id, 'held']]);
    const bad = await c.request({ op: 'reserve', bytes: -1 } as never, ReserveReplySchema);
    expect(bad).toMatchObject({ ok: false, kind: 'invalid' });
    const evil = await c.request({ op: 'reserve', bytes: 1, for: '../../etc' }, ReserveReplySchema);
    expect(evil).toMatchObject({ ok: false, kind: 'invalid' });
    const rel = await c.request({ op: 'release', id: r.id }, ListReplySchema.pick({ ok: true }).partial().passthrough());
    expect(rel.ok).toBe(true);
    expect(book.list()).toEqual([]);
    c.close();
  });

  it('a refusal carries the structured reason', async () => {
    await start([work], 64 * MiB);
    const c = await AdmissionConnection.connect(path.join(dir, 'admission.sock'));
    const r = await c.request({ op: 'reserve', bytes: 8 * 1024 ** 3, for: 'big' }, ReserveReplySchema);
    if (r.ok) throw new Error('expected refusal');
    expect(r.kind).toBe('below-floors');
    expect(r.refusal).toMatchObject({ neededKib: 8 * GiB, availableKib: 0, reclaimableKib: 3 * GiB, missingKib: 5 * GiB, shutdown: null });
    c.close();
  });

  it('a line over 4 KiB is refused and the connection closed', async () => {
    await start([work], 2 * GiB);
    const c = await rawConnect(path.join(dir, 'admission.sock'));
    c.socket.write('x'.repeat(5000));
    await c.closed;
    expect(JSON.parse(c.received().toString())).toMatchObject({ ok: false, kind: 'invalid' });
  });

  it('a client killed (SIGKILL) while holding a reservation releases it', async () => {
    await start([work], 2 * GiB);
    const sock = path.join(dir, 'admission.sock');
    const child = spawn(process.execPath, ['-e', `
      const s = require('net').connect(${JSON.stringify(sock)});
      s.on('data', (d) => process.stdout.write(d));
      s.write(JSON.stringify({ op: 'reserve', bytes: 1073741824, for: 'victim' }) + '\\n');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString())));
    expect(JSON.parse(line)).toMatchObject({ ok: true, forName: 'victim' });
    expect(book.list().map((r) => r.forName)).toEqual(['victim']);
    child.kill('SIGKILL');
    await waitUntil(() => book.list().length === 0);
  });

  it('FD_CLOEXEC: a process the service spawns inherits neither the listeners nor client connections', async () => {
    await start([work], 2 * GiB);
    const c = await AdmissionConnection.connect(path.join(dir, 'admission.sock'));
    const q = await rawConnect(path.join(dir, 'qmemman.sock'));
    q.socket.write('1048576\n');
    await q.waitBytes(3);
    // This test process IS the service here: its own fd table has the sockets open…
    const own = execFileSync('ls', ['-l', `/proc/${process.pid}/fd`], { encoding: 'utf8' });
    expect((own.match(/socket:/g) ?? []).length).toBeGreaterThanOrEqual(4);
    // …but a child (as xl would be) sees none of them.
    // (fds 0-2 are the child's stdio, which libuv makes from a socketpair: look above them.)
    const script = 'cd /proc/$$/fd && for f in *; do [ "$f" -gt 2 ] && echo "$f $(readlink "$f")"; done; true';
    const child = execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(child).not.toMatch(/socket:/);
    c.close();
    q.socket.end();
  });
});

describe('robustness', () => {
  it('a failure inside a request costs that request (error reply / FAIL), never the service', async () => {
    await start([work], 64 * MiB);
    const real = manager.lastDecisions.bind(manager);
    manager.lastDecisions = () => {
      throw new Error('boom');
    };
    const c = await AdmissionConnection.connect(path.join(dir, 'admission.sock'));
    const r = await c.request({ op: 'reserve', bytes: 1 << 30, for: 'x' }, ReserveReplySchema);
    expect(r).toMatchObject({ ok: false, kind: 'invalid', message: 'internal error: boom' });
    const q = await rawConnect(path.join(dir, 'qmemman.sock'));
    q.socket.write(`${1 << 30}\n`);
    expect((await q.waitBytes(5)).toString('latin1')).toBe('FAIL\n');
    q.socket.end();
    await q.closed;
    manager.lastDecisions = real;
    // Same connection, next request: served.
    const again = await c.request({ op: 'list' }, ListReplySchema);
    expect(again.ok).toBe(true);
    c.close();
  });
});

describe('state for xmem top', () => {
  it('stateSource decorates the manager\'s state with live reservations (squeezing/held) and refusals, adds the book\'s changes and refusals to the events; off detaches', async () => {
    await start([work], 2 * GiB);
    const { EventEmitter } = await import('node:events');
    const base = { v: 1, type: 'snapshot', atMs: 1, policy: 'xmem', host: { totalKib: 1, freeKib: 1, reservedKib: 0, summary: '' }, vms: [], reservations: [], refusals: [], decisions: [] } as const;
    const em = new EventEmitter();
    const source: StateSource = { current: () => structuredClone(base) as never, on: (e, l) => em.on(e, l), off: (e, l) => em.off(e, l) };
    const wrapped = server.stateSource(source);
    const seen = { change: 0, decision: [] as unknown[], refusal: [] as unknown[] };
    const onChange = () => seen.change++;
    const onDecision = (d: unknown) => seen.decision.push(d);
    const onRefusal = (r: unknown) => seen.refusal.push(r);
    wrapped.on('change', onChange);
    wrapped.on('decision', onDecision);
    wrapped.on('refusal', onRefusal);

    const c = await AdmissionConnection.connect(path.join(dir, 'admission.sock'));
    const ok = await c.request({ op: 'reserve', bytes: 1 << 30, for: 'vm-a' }, ReserveReplySchema);
    const no = await c.request({ op: 'reserve', bytes: 2 ** 45, for: 'vm-b' }, ReserveReplySchema);
    expect([ok.ok, no.ok]).toEqual([true, false]);
    // The book's changes (booked, refused) reach a viewer even without a pass.
    expect(seen.change).toBeGreaterThanOrEqual(2);
    expect(seen.refusal).toEqual([expect.objectContaining({ forName: 'vm-b', neededKib: 2 ** 35 })]);
    const before = seen.change;
    em.emit('change');
    em.emit('decision', { atMs: 1, domid: 3, name: 'work', fromKib: 1, toKib: 2, reason: 'r' });
    expect(seen.change).toBe(before + 1);
    expect(seen.decision).toEqual([expect.objectContaining({ name: 'work' })]);

    const st = wrapped.current();
    expect(st.host.reservedKib).toBe(1 * GiB);
    expect(st.reservations).toEqual([expect.objectContaining({ forName: 'vm-a', kib: 1 * GiB, state: 'held' })]);
    expect(Math.abs(st.reservations[0]!.sinceMs - Date.now())).toBeLessThan(5000);
    expect(st.refusals).toEqual([expect.objectContaining({ forName: 'vm-b', neededKib: 2 ** 35 })]);

    wrapped.off!('change', onChange);
    wrapped.off!('decision', onDecision);
    wrapped.off!('refusal', onRefusal);
    expect(['change', 'decision', 'refusal'].map((e) => em.listenerCount(e))).toEqual([0, 0, 0]);
    const after = seen.change;
    await c.request({ op: 'reserve', bytes: 2 ** 45, for: 'vm-c' }, ReserveReplySchema);
    expect([seen.change, seen.refusal.length]).toEqual([after, 1]);
    c.close();
  });
});

async function waitUntil(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}
