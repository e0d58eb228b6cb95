import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import WebSocket, { WebSocketServer } from 'ws';
import { HostStateSchema, type HostState } from '../../src/schemas/state.js';
import { startStateServer, type StateServer } from '../../dom0/state/server.js';
import { StateClient, StateStreamError, fetchState, parseStateMessage } from '../../dom0/state/client.js';
import { FakeSource, hostState } from './fixtures.js';
import { tempDir, until } from './helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let sock: string;
const servers: StateServer[] = [];
const clients: StateClient[] = [];

beforeEach(async () => {
  tmp = await tempDir();
  sock = path.join(tmp.dir, 'state.sock');
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  for (const s of servers.splice(0)) await s.close();
  await tmp.cleanup();
});

async function serve(source: FakeSource, extra: { mode?: number } = {}): Promise<StateServer> {
  const s = await startStateServer(source, { socketPath: sock, ...extra });
  servers.push(s);
  return s;
}

function rawMessages(socketPath: string): { ws: WebSocket; msgs: unknown[] } {
  const ws = new WebSocket(`ws+unix://${socketPath}:/state`);
  const msgs: unknown[] = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  return { ws, msgs };
}

function collect(client: StateClient): { states: HostState[]; errors: StateStreamError[]; disconnects: { reason: string; retryInMs: number | null }[]; opens: number } {
  const out = { states: [] as HostState[], errors: [] as StateStreamError[], disconnects: [] as { reason: string; retryInMs: number | null }[], opens: 0 };
  client.on('state', (s) => out.states.push(s));
  client.on('error', (e) => out.errors.push(e));
  client.on('disconnect', (d) => out.disconnects.push(d));
  client.on('open', () => out.opens++);
  return out;
}

describe('state stream server', () => {
  it('sends a schema-valid snapshot on connect, then every update', async () => {
    const source = new FakeSource(hostState());
    await serve(source);
    const { ws, msgs } = rawMessages(sock);
    await until(() => msgs.length >= 1 || undefined, 'snapshot on connect');
    expect(HostStateSchema.parse(msgs[0])).toEqual(source.current());

    const next = hostState({ atMs: source.current().atMs + 5000, policy: 'qmemman' });
    source.push(next);
    await until(() => msgs.length >= 2 || undefined, 'update');
    expect(HostStateSchema.parse(msgs[1])).toEqual(next);
    expect((msgs[1] as HostState).policy).toBe('qmemman');
    ws.close();
  });

  it('builds the state only for a viewer: never while nobody watches, once per burst of changes while one does', async () => {
    const source = new FakeSource(hostState());
    await serve(source);
    for (let i = 0; i < 50; i++) source.push(hostState({ atMs: 1000 + i }));
    await new Promise((r) => setImmediate(r));
    expect(source.pulls).toBe(0);

    const { ws, msgs } = rawMessages(sock);
    await until(() => msgs.length >= 1 || undefined, 'snapshot on connect');
    expect(source.pulls).toBe(1);
    // A burst within one turn of the event loop (a pass, then the book's change) is one frame.
    for (let i = 0; i < 5; i++) source.push(hostState({ atMs: 2000 + i }));
    await until(() => msgs.length >= 2 || undefined, 'update');
    await new Promise((r) => setTimeout(r, 50));
    expect(msgs).toHaveLength(2);
    expect((msgs[1] as HostState).atMs).toBe(2004);
    expect(source.pulls).toBe(2);

    ws.close();
    await until(() => servers[0]!.clients() === 0 || undefined, 'client gone');
    source.push(hostState({ atMs: 3000 }));
    await new Promise((r) => setImmediate(r));
    expect(source.pulls).toBe(2);
  });

  it('creates the socket 0600 by default, or with the configured mode', async () => {
    const s = await serve(new FakeSource(hostState()));
    expect((await stat(sock)).mode & 0o777).toBe(0o600);
    await s.close();
    servers.length = 0;
    await serve(new FakeSource(hostState()), { mode: 0o660 });
    expect((await stat(sock)).mode & 0o777).toBe(0o660);
  });

  it('gives a configured group read-write access (0660), for a non-root viewer', async () => {
    const gid = process.getgid!() === 0 ? 1 /* daemon */ : process.getgid!();
    servers.push(await startStateServer(new FakeSource(hostState()), { socketPath: sock, group: gid }));
    const st = await stat(sock);
    expect(st.gid).toBe(gid);
    expect(st.mode & 0o777).toBe(0o660);
  });

  it('creates the socket directory when /run was wiped (reboot)', async () => {
    const nested = path.join(tmp.dir, 'run', 'xmem', 'state.sock');
    servers.push(await startStateServer(new FakeSource(hostState()), { socketPath: nested }));
    expect((await stat(nested)).isSocket()).toBe(true);
    expect((await stat(path.dirname(nested))).isDirectory()).toBe(true);
  });

  it('replaces a stale socket but refuses one a live service answers on, and never a plain file', async () => {
    // A live socket: another process answers on it.
    const live = net.createServer();
    await new Promise<void>((r) => live.listen(sock, r));
    const refused = await startStateServer(new FakeSource(hostState()), { socketPath: sock }).catch((e: Error) => e);
    expect((refused as Error).message).toMatch(/in use by a running service/);
    await new Promise<void>((r) => live.close(() => r()));

    // A stale socket: its owner was SIGKILLed, so nobody unlinked it.
    const child = spawn(process.execPath, ['-e', 'require("net").createServer().listen(process.argv[1])', sock], { stdio: 'ignore' });
    await until(async () => (await stat(sock).catch(() => null))?.isSocket() || undefined, 'child socket');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect((await stat(sock)).isSocket()).toBe(true);
    await serve(new FakeSource(hostState()));
    const { msgs } = rawMessages(sock);
    await until(() => msgs[0], 'snapshot from the server that replaced the stale socket');

    const plain = path.join(tmp.dir, 'plain');
    await writeFile(plain, 'keep me');
    const err = await startStateServer(new FakeSource(hostState()), { socketPath: plain }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/not a socket/);
  });

  it('waits for the first pass when the source has no state yet', async () => {
    const source = new FakeSource(hostState());
    const current = source.current.bind(source);
    let passed = false;
    source.current = () => {
      if (!passed) throw new Error('no pass yet');
      return current();
    };
    const lines: { level: string; msg: string | undefined }[] = [];
    const logger = { info: (_: object, msg?: string) => lines.push({ level: 'info', msg }), warn: (_: object, msg?: string) => lines.push({ level: 'warn', msg }) };
    servers.push(await startStateServer(source, { socketPath: sock, logger }));
    const client = new StateClient({ socketPath: sock }).start();
    clients.push(client);
    const seen = collect(client);
    await until(() => seen.opens || undefined, 'open');
    // Every change pulls again while a viewer watches: the failure is logged once, not per pull.
    for (let i = 0; i < 20; i++) {
      source.emit('change');
      await new Promise((r) => setImmediate(r));
    }
    expect(seen.states).toHaveLength(0);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([{ level: 'warn', msg: 'state source has no current state; viewers get the next one' }]);
    passed = true;
    source.push(hostState({ policy: 'static' }));
    await until(() => seen.states[0], 'first state');
    expect(seen.states[0]!.policy).toBe('static');
    expect(lines.filter((l) => l.msg?.startsWith('state source'))).toEqual([
      { level: 'warn', msg: 'state source has no current state; viewers get the next one' },
      { level: 'info', msg: 'state source answers again' },
    ]);
  });

  it('detaches from the source and removes its socket on close', async () => {
    const source = new FakeSource(hostState());
    const s = await serve(source);
    const events = ['change', 'decision', 'refusal'] as const;
    expect(events.map((e) => source.listenerCount(e))).toEqual([1, 1, 1]);
    await s.close();
    expect(events.map((e) => source.listenerCount(e))).toEqual([0, 0, 0]);
    await expect(stat(sock)).rejects.toThrow(/ENOENT/);
  });

  it('refuses WebSocket clients beyond maxClients with 503', async () => {
    servers.push(await startStateServer(new FakeSource(hostState()), { socketPath: sock, maxClients: 2 }));
    const a = rawMessages(sock);
    const b = rawMessages(sock);
    await until(() => (a.msgs.length && b.msgs.length) || undefined, 'two clients served');
    const c = new WebSocket(`ws+unix://${sock}:/state`);
    const err = await new Promise<Error>((resolve) => c.on('error', resolve));
    expect(err.message).toMatch(/503/);
    a.ws.close();
  });

  it('answers 404 to other paths and upgrades only /state', async () => {
    await serve(new FakeSource(hostState()));
    const res = await new Promise<number>((resolve, reject) =>
      http.get({ socketPath: sock, path: '/nope' }, (r) => resolve(r.statusCode ?? 0)).on('error', reject),
    );
    expect(res).toBe(404);
    const ws = new WebSocket(`ws+unix://${sock}:/other`);
    const err = await new Promise<Error>((resolve) => ws.on('error', resolve));
    expect(err.message).toMatch(/404/);
  });
});

describe('state stream client', () => {
  it('validates, reconnects after the service restarts, and reports the outage', async () => {
    const source = new FakeSource(hostState());
    const s = await serve(source);
    const client = new StateClient({ socketPath: sock }, { minDelayMs: 50, maxDelayMs: 100 }).start();
    clients.push(client);
    const seen = collect(client);
    await until(() => seen.states[0], 'first state');

    await s.close();
    servers.length = 0;
    await until(() => seen.disconnects[0], 'disconnect');
    expect(seen.disconnects[0]!.retryInMs).not.toBeNull();

    await serve(new FakeSource(hostState({ policy: 'squeezed' })));
    await until(() => seen.states.find((x) => x.policy === 'squeezed'), 'state after reconnect');
    expect(seen.opens).toBe(2);
    expect(seen.errors).toHaveLength(0);
  });

  it('refuses a stream version it does not know, and stops retrying', async () => {
    const wss = new WebSocketServer({ server: await listenHttp(sock) });
    wss.on('connection', (ws) => ws.send(JSON.stringify({ ...hostState(), v: 2 })));
    const client = new StateClient({ socketPath: sock }, { minDelayMs: 20 }).start();
    clients.push(client);
    const seen = collect(client);
    await until(() => seen.disconnects[0], 'disconnect after version refusal');
    expect(seen.states).toHaveLength(0);
    expect(seen.errors[0]!.kind).toBe('version');
    expect(seen.errors[0]!.message).toMatch(/version 2.*understands version 1/);
    expect(seen.disconnects[0]!.retryInMs).toBeNull();
    await new Promise((r) => setTimeout(r, 150));
    expect(seen.opens).toBe(1);
    wss.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => (wss.options.server as http.Server).close(() => r()));
  });

  it('drops a malformed snapshot, keeps the connection, and takes the next good one', async () => {
    const wss = new WebSocketServer({ server: await listenHttp(sock) });
    wss.on('connection', (ws) => {
      const bad = hostState() as unknown as { vms: { actualKib: unknown }[] };
      bad.vms[0]!.actualKib = 'lots';
      ws.send(JSON.stringify(bad));
      ws.send('{not json');
      ws.send(JSON.stringify(hostState({ policy: 'good' })));
    });
    const client = new StateClient({ socketPath: sock }).start();
    clients.push(client);
    const seen = collect(client);
    await until(() => seen.states[0], 'good state');
    expect(seen.states.map((s) => s.policy)).toEqual(['good']);
    expect(seen.errors.map((e) => e.kind)).toEqual(['invalid', 'invalid']);
    expect(seen.errors[0]!.message).toMatch(/vms\.0\.actualKib/);
    expect(seen.disconnects).toHaveLength(0);
    client.stop();
    for (const c of wss.clients) c.terminate();
    wss.close();
    await new Promise<void>((r) => (wss.options.server as http.Server).close(() => r()));
  });

  it('fetchState says plainly that the service is not running', async () => {
    const err = await fetchState({ socketPath: sock }, 2000).catch((e: StateStreamError) => e);
    expect(err).toBeInstanceOf(StateStreamError);
    expect((err as StateStreamError).kind).toBe('unreachable');
    expect((err as Error).message).toContain(`not running (no state socket at ${sock})`);
  });

  it('parseStateMessage checks the version before the schema', () => {
    expect(() => parseStateMessage(JSON.stringify({ v: 9 }))).toThrow(/version 9/);
    expect(() => parseStateMessage(JSON.stringify({ v: 1 }))).toThrow(/invalid snapshot/);
    expect(parseStateMessage(JSON.stringify(hostState())).vms).toHaveLength(4);
  });
});

async function listenHttp(socketPath: string): Promise<http.Server> {
  const srv = http.createServer();
  await new Promise<void>((r) => srv.listen(socketPath, r));
  return srv;
}
