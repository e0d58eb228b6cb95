/**
 * Tests that need the real daemon itself (not only a client): Debian's tools on the same
 * socket, the listen backlog of 1, and the daemon being killed and restarted.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import type { PeerDaemon } from '../peer/daemon.js';
import { eventLog, rejection, waitCount } from './conformance.js';

const run = promisify(execFile);

export function definePeerTests(daemon: () => PeerDaemon): void {
  const tool = async (name: string, ...args: string[]): Promise<string> => {
    const d = daemon();
    const { stdout } = await run(path.join(d.toolsDir, name), args, { env: { ...process.env, ...d.env } });
    return stdout;
  };

  describe(`interop with Debian's xenstore tools`, () => {
    it('xenstore-read and xenstore-ls see what the client wrote', async () => {
      const xs = await connectXenstore({ path: daemon().socketPath });
      try {
        await xs.write('/interop/a/value', 'from xmem');
        await xs.write('/interop/a/other', '42');
        await xs.setPerms('/interop/a/other', [{ access: 'n', domid: 0 }, { access: 'r', domid: 5 }]);
        expect((await tool('xenstore-read', '/interop/a/value')).trim()).toBe('from xmem');
        const ls = await tool('xenstore-ls', '-p', '/interop');
        expect(ls).toMatch(/value = "from xmem"/);
        expect(ls).toMatch(/other = "42"[ .]+\(n0,r5\)/);
      } finally {
        await xs.close();
      }
    });

    it('the client reads what xenstore-write wrote, and its watch fires', async () => {
      const xs = await connectXenstore({ path: daemon().socketPath });
      try {
        const log = eventLog();
        await xs.watch('/interop/b', log.handler);
        await log.waitFor('/interop/b');
        await tool('xenstore-write', '/interop/b/target', '1048576', '/interop/b/name', 'vm3');
        await log.waitFor('/interop/b/name');
        expect(await xs.read('/interop/b/target')).toBe('1048576');
        expect(await xs.read('/interop/b/name')).toBe('vm3');
        await tool('xenstore-chmod', '/interop/b/target', 'n0', 'r3');
        expect(await xs.getPerms('/interop/b/target')).toEqual([
          { access: 'n', domid: 0 },
          { access: 'r', domid: 3 },
        ]);
        await tool('xenstore-rm', '/interop/b');
        expect(await xs.tryRead('/interop/b/name')).toBeNull();
      } finally {
        await xs.close();
      }
    });
  });

  describe('connection handling on the real daemon', () => {
    it('200 simultaneous connects all succeed although the daemon refuses many with EAGAIN', async () => {
      const d = daemon();
      // Precondition: plain connects really do hit the listen backlog of 1.
      const raw = await Promise.all(
        Array.from({ length: 200 }, () => new Promise<string>((resolve) => {
          const s = net.createConnection({ path: d.socketPath });
          s.once('connect', () => { s.destroy(); resolve('ok'); });
          s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        })),
      );
      expect(raw.filter((c) => c === 'EAGAIN').length).toBeGreaterThan(0);

      const clients = await Promise.all(Array.from({ length: 200 }, () => connectXenstore({ path: d.socketPath })));
      try {
        const dirs = await Promise.all(clients.map((c) => c.directory('/')));
        expect(dirs.every((x) => x.length > 0)).toBe(true);
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('connecting to a socket that does not exist rejects ENOENT', async () => {
      await expect(connectXenstore({ path: path.join(daemon().ringDir, 'no-socket') })).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('reconnects after the daemon is killed and restarted, with its watches registered again', async () => {
      const d = daemon();
      const xs: XenstoreConnection = await connectXenstore({ path: d.socketPath, backoffMs: { initial: 20, max: 200 } });
      try {
        const log = eventLog();
        await xs.watch('/survivor', log.handler);
        await log.waitFor('/survivor');
        const disconnected = new Promise((r) => xs.once('disconnect', r));
        const reconnected = new Promise((r) => xs.once('reconnect', r));

        await d.restart({ signal: 'SIGKILL' }); // a crash; the new daemon has an empty tree, no watches
        await disconnected;
        // Requested while the connection is down: sent once it is back.
        const queued = xs.write('/queued', 'sent after reconnect');
        const late = eventLog();
        const lateWatch = xs.watch('/late', late.handler);
        await reconnected;
        await queued;
        await lateWatch;

        const writer = await connectXenstore({ path: d.socketPath });
        await writer.write('/survivor/child', 'after restart');
        await log.waitFor('/survivor/child');
        await writer.write('/late', 'x');
        await waitCount(late, '/late', 2); // initial + the write: registered exactly once
        expect(await writer.read('/queued')).toBe('sent after reconnect');
        await writer.close();
      } finally {
        await xs.close();
      }
    });

    it('a request in flight when the daemon dies rejects ECONNRESET; later ones succeed', async () => {
      const d = daemon();
      const xs = await connectXenstore({ path: d.socketPath, backoffMs: { initial: 20, max: 200 } });
      try {
        await xs.write('/inflight', 'x');
        process.kill(d.pid()!, 'SIGSTOP'); // the request below is sent but never answered
        const inflight = rejection(xs.read('/inflight'));
        await new Promise((r) => setTimeout(r, 20));
        await d.restart();
        const e = await inflight;
        expect(e.errno).toBe('ECONNRESET');
        await xs.write('/inflight', 'after');
        expect(await xs.read('/inflight')).toBe('after');
      } finally {
        await xs.close();
      }
    });

    it('a transaction cut by a restart is retried from the start on the new connection', async () => {
      const d = daemon();
      const xs = await connectXenstore({ path: d.socketPath, backoffMs: { initial: 20, max: 200 } });
      try {
        await xs.write('/cut', 'before');
        let attempts = 0;
        const done = xs.transaction(async (tx) => {
          attempts++;
          if (attempts === 1) {
            await xs.read('/cut', tx);
            await d.restart();
          }
          await xs.write('/cut', `attempt ${attempts}`, tx);
        });
        await done;
        expect(attempts).toBe(2);
        expect(await xs.read('/cut')).toBe('attempt 2');
      } finally {
        await xs.close();
      }
    });
  });
}
