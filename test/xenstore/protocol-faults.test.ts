import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import { HEADER_SIZE } from '../../src/xenstore/wire.js';
import { rejection } from './conformance.js';

/**
 * Faults the real daemons never produce on demand: a peer that breaks the framing. This is a
 * fault injector, not a stand-in for xenstored (behaviour is tested on the real daemons): the
 * first connection misbehaves as scripted, later ones answer every request with `OK`.
 */

type Fault = (sock: net.Socket, req: { type: number; reqId: number }) => void;

function frame(type: number, reqId: number, payload: Buffer, announced = payload.length): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(reqId, 4);
  h.writeUInt32LE(announced, 12);
  return Buffer.concat([h, payload]);
}

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

async function faultyPeer(fault: Fault): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-fault-'));
  const sockPath = path.join(dir, 'socket');
  let connections = 0;
  const server = net.createServer((sock) => {
    const first = connections++ === 0;
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= HEADER_SIZE && buf.length >= HEADER_SIZE + buf.readUInt32LE(12)) {
        const req = { type: buf.readUInt32LE(0), reqId: buf.readUInt32LE(4) };
        buf = buf.subarray(HEADER_SIZE + buf.readUInt32LE(12));
        if (first) fault(sock, req);
        else sock.write(frame(req.type, req.reqId, Buffer.from('OK\0')));
      }
    });
  });
  await new Promise<void>((r) => server.listen(sockPath, r));
  cleanup.push(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return sockPath;
}

async function client(sockPath: string): Promise<XenstoreConnection> {
  const xs = await connectXenstore({ path: sockPath, backoffMs: { initial: 5, max: 20 } });
  cleanup.push(() => void xs.close());
  return xs;
}

describe('client against a peer that breaks the protocol', () => {
  it('a reply announcing more than 4096 bytes drops the connection, then it reconnects', async () => {
    const xs = await client(await faultyPeer((s, r) => s.write(frame(r.type, r.reqId, Buffer.alloc(0), 100_000))));
    const reconnected = new Promise((r) => xs.once('reconnect', r));
    expect((await rejection(xs.write('/a', 'b'))).errno).toBe('ECONNRESET');
    await reconnected;
    await xs.write('/a', 'b');
  });

  it('a reply for a request that was never sent drops the connection', async () => {
    const xs = await client(await faultyPeer((s, r) => s.write(frame(r.type, r.reqId + 7, Buffer.from('OK\0')))));
    const disconnected = new Promise((r) => xs.once('disconnect', r));
    expect((await rejection(xs.write('/a', 'b'))).errno).toBe('ECONNRESET');
    await disconnected;
  });

  it('unknown watch tokens and malformed events are ignored; the reply still arrives', async () => {
    const xs = await client(
      await faultyPeer((s, r) => {
        s.write(frame(15, 0, Buffer.from('/x\0not-ours\0')));
        s.write(frame(15, 0, Buffer.alloc(0)));
        s.write(frame(15, 0, Buffer.from('\xff\xfe', 'latin1')));
        s.write(frame(r.type, r.reqId, Buffer.from('OK\0')));
      }),
    );
    await xs.write('/a', 'b');
  });

  it('an error reply with a junk errno is bounded and still typed', async () => {
    const xs = await client(await faultyPeer((s, r) => s.write(frame(16, r.reqId, Buffer.from('X'.repeat(3000))))));
    const e = await rejection(xs.read('/a'));
    expect(e.errno.length).toBeLessThanOrEqual(32);
    expect(e.message).toContain('READ /a');
  });
});
