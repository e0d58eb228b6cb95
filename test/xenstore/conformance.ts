/**
 * Xenstore conformance suite: what any XenstoreClient (on any daemon) must do. Run by
 * test/xenstore/c.test.ts and ocaml.test.ts against the real daemons, and by SIM against its
 * embedded store. Only the XenstoreClient API is used; where the C and OCaml daemons differ
 * (documented in /work/shared/reference/xenstore.md) the assertions accept both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WatchEvent, XenstoreClient } from '../../src/xenstore/types.js';

/** Collects watch events; `waitFor` polls until a matching event arrived. */
export function eventLog() {
  const events: WatchEvent[] = [];
  return {
    events,
    handler: (e: WatchEvent) => {
      events.push(e);
    },
    paths: () => events.map((e) => e.path),
    async waitFor(path: string, timeoutMs = 3000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!events.some((e) => e.path === path)) {
        if (Date.now() > deadline) throw new Error(`no watch event for ${path}; got ${JSON.stringify(events.map((e) => e.path))}`);
        await new Promise((r) => setTimeout(r, 2));
      }
    },
  };
}

/** The rejection of `p`, or a failure if it resolved. */
export async function rejection(p: Promise<unknown>): Promise<{ errno: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { errno: string; message: string };
  }
  throw new Error('expected a rejection, but the call succeeded');
}

export function defineConformance(label: string, connect: () => Promise<XenstoreClient>): void {
  describe(`xenstore conformance: ${label}`, () => {
    let xs: XenstoreClient;
    let other: XenstoreClient;
    let n = 0;
    const root = `/xmemconf${process.pid}`;
    /** A fresh subtree per test: the daemon's tree is shared by the file. */
    const base = () => `${root}/t${++n}`;

    beforeAll(async () => {
      xs = await connect();
      other = await connect();
    });
    afterAll(async () => {
      await xs?.rm(root).catch(() => {});
      await xs?.close();
      await other?.close();
    });

    describe('operations', () => {
      it('write then read returns the value; parents are created with empty values', async () => {
        const b = base();
        await xs.write(`${b}/a/b`, 'hello wörld');
        expect(await xs.read(`${b}/a/b`)).toBe('hello wörld');
        expect(await xs.read(`${b}/a`)).toBe('');
        expect(await other.read(`${b}/a/b`)).toBe('hello wörld');
      });

      it('writes an empty value and overwrites', async () => {
        const b = base();
        await xs.write(`${b}/k`, '');
        expect(await xs.read(`${b}/k`)).toBe('');
        await xs.write(`${b}/k`, 'v2');
        expect(await xs.read(`${b}/k`)).toBe('v2');
      });

      it('read of a missing node rejects ENOENT; tryRead resolves null', async () => {
        const b = base();
        const e = await rejection(xs.read(`${b}/missing`));
        expect(e.errno).toBe('ENOENT');
        expect(e.message).toContain('ENOENT');
        expect(await xs.tryRead(`${b}/missing`)).toBeNull();
      });

      it('directory lists children; an empty directory is []', async () => {
        const b = base();
        await xs.write(`${b}/d/x`, '1');
        await xs.write(`${b}/d/y`, '2');
        await xs.mkdir(`${b}/d/z`);
        expect((await xs.directory(`${b}/d`)).sort()).toEqual(['x', 'y', 'z']);
        expect(await xs.directory(`${b}/d/z`)).toEqual([]);
        expect((await rejection(xs.directory(`${b}/nope`))).errno).toBe('ENOENT');
      });

      it('mkdir creates an empty node and is idempotent (keeps the value)', async () => {
        const b = base();
        await xs.mkdir(`${b}/m`);
        expect(await xs.read(`${b}/m`)).toBe('');
        await xs.write(`${b}/m`, 'kept');
        await xs.mkdir(`${b}/m`);
        expect(await xs.read(`${b}/m`)).toBe('kept');
      });

      it('rm removes a whole subtree; rm of a missing child is OK; missing parent is ENOENT', async () => {
        const b = base();
        await xs.write(`${b}/r/a/b/c`, '1');
        await xs.rm(`${b}/r/a`);
        expect(await xs.tryRead(`${b}/r/a/b/c`)).toBeNull();
        expect(await xs.tryRead(`${b}/r/a`)).toBeNull();
        expect(await xs.directory(`${b}/r`)).toEqual([]);
        await xs.rm(`${b}/r/never`);
        expect((await rejection(xs.rm(`${b}/nope/never`))).errno).toBe('ENOENT');
      });

      it('relative paths resolve under the connection home (/local/domain/0 for dom0)', async () => {
        const rel = `xmemconf${process.pid}-rel/k`;
        await xs.write(rel, 'rel');
        expect(await xs.read(`/local/domain/0/${rel}`)).toBe('rel');
        await xs.rm(`/local/domain/0/xmemconf${process.pid}-rel`);
      });

      it('getDomainPath', async () => {
        expect(await xs.getDomainPath(0)).toBe('/local/domain/0');
        expect(await xs.getDomainPath(17)).toBe('/local/domain/17');
      });

      it('introduce / isIntroduced / release, with an @introduceDomain event', async () => {
        const domid = 40 + (process.pid % 100);
        const log = eventLog();
        const unwatch = await xs.watch('@introduceDomain', log.handler);
        await log.waitFor('@introduceDomain'); // initial event
        const before = log.events.length;
        expect(await xs.isIntroduced(domid)).toBe(false);
        await xs.introduce(domid, 1, 7);
        expect(await xs.isIntroduced(domid)).toBe(true);
        const deadline = Date.now() + 3000;
        while (log.events.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
        expect(log.events.length).toBeGreaterThan(before);
        await xs.release(domid);
        expect(await xs.isIntroduced(domid)).toBe(false);
        await unwatch();
      });
    });

    describe('permissions', () => {
      it('a dom0-created node under / is owned by dom0 with no default access', async () => {
        const b = base();
        await xs.write(`${b}/p`, 'x');
        expect(await xs.getPerms(`${b}/p`)).toEqual([{ access: 'n', domid: 0 }]);
      });

      it('setPerms round-trips every letter; new children inherit the parent list', async () => {
        const b = base();
        await xs.write(`${b}/p`, 'x');
        const perms = [
          { access: 'n', domid: 0 },
          { access: 'r', domid: 5 },
          { access: 'w', domid: 6 },
          { access: 'b', domid: 7 },
        ] as const;
        await xs.setPerms(`${b}/p`, [...perms]);
        expect(await xs.getPerms(`${b}/p`)).toEqual(perms);
        await xs.write(`${b}/p/child`, 'y');
        expect(await xs.getPerms(`${b}/p/child`)).toEqual(perms);
        await xs.setPerms(`${b}/p`, [{ access: 'b', domid: 3 }]);
        expect(await xs.getPerms(`${b}/p`)).toEqual([{ access: 'b', domid: 3 }]);
      });

      it('a malformed permission is refused with EINVAL', async () => {
        const b = base();
        await xs.write(`${b}/p`, 'x');
        const bad = [{ access: 'x' as 'n', domid: 0 }];
        expect((await rejection(xs.setPerms(`${b}/p`, bad))).errno).toBe('EINVAL');
        expect((await rejection(xs.setPerms(`${b}/p`, []))).errno).toBe('EINVAL');
      });
    });

    describe('errors and limits', () => {
      it('invalid paths are EINVAL', async () => {
        for (const p of ['/has space', '/trailing/', '/dou//ble']) {
          expect((await rejection(xs.write(p, 'v'))).errno, p).toBe('EINVAL');
        }
      });

      it('a NUL inside a path is refused with EINVAL without confusing the daemon', async () => {
        const b = base();
        expect((await rejection(xs.write(`${b}/a\0b`, 'v'))).errno).toBe('EINVAL');
        await xs.write(`${b}/ok`, 'still fine');
        expect(await xs.read(`${b}/ok`)).toBe('still fine');
      });

      it('a payload over 4096 bytes is refused (E2BIG) and the connection stays usable', async () => {
        const b = base();
        const e = await rejection(xs.write(`${b}/big`, 'x'.repeat(5000)));
        expect(e.errno).toBe('E2BIG');
        expect(e.message).toMatch(/4096/);
        await xs.write(`${b}/small`, 'ok');
        expect(await xs.read(`${b}/small`)).toBe('ok');
      });

      it('a 1 KiB value round-trips (within every daemon quota)', async () => {
        const b = base();
        const v = 'abcdefgh'.repeat(128);
        await xs.write(`${b}/kib`, v);
        expect(await xs.read(`${b}/kib`)).toBe(v);
      });

      it('unknown transaction ids are rejected (ENOENT on C, EIO on O)', async () => {
        const e = await rejection(xs.read('/x', 987654));
        expect(['ENOENT', 'EIO']).toContain(e.errno);
      });
    });

    describe('watches', () => {
      it('sends an initial event for the watched path, then events for the node and descendants', async () => {
        const b = base();
        await xs.mkdir(`${b}/w`);
        const log = eventLog();
        const unwatch = await xs.watch(`${b}/w`, log.handler);
        await log.waitFor(`${b}/w`);
        await other.write(`${b}/w/a/b`, '1');
        await log.waitFor(`${b}/w/a/b`);
        await other.write(`${b}/w`, 'self');
        await other.write(`${b}/sibling`, 'not watched');
        await other.write(`${b}/w/last`, '1');
        await log.waitFor(`${b}/w/last`);
        expect(log.paths()).not.toContain(`${b}/sibling`);
        expect(log.paths().filter((p) => p === `${b}/w`).length).toBe(2); // initial + own write
        await unwatch();
      });

      it('a watch on a missing node still gets its initial event and fires on creation', async () => {
        const b = base();
        const log = eventLog();
        const unwatch = await xs.watch(`${b}/later`, log.handler);
        await log.waitFor(`${b}/later`);
        await other.write(`${b}/later`, 'now');
        await waitCount(log, `${b}/later`, 2);
        await unwatch();
      });

      it('events are demultiplexed from replies, including the writer’s own events', async () => {
        const b = base();
        const log = eventLog();
        const unwatch = await xs.watch(`${b}/own`, log.handler);
        await log.waitFor(`${b}/own`);
        const writes = Array.from({ length: 50 }, (_, i) => xs.write(`${b}/own/k${i}`, String(i)));
        await Promise.all(writes);
        for (let i = 0; i < 50; i++) expect(await xs.read(`${b}/own/k${i}`)).toBe(String(i));
        await log.waitFor(`${b}/own/k49`);
        const got = new Set(log.paths());
        for (let i = 0; i < 50; i++) expect(got.has(`${b}/own/k${i}`)).toBe(true);
        await unwatch();
      });

      it('unwatch stops the events', async () => {
        const b = base();
        const log = eventLog();
        const unwatch = await xs.watch(`${b}/u`, log.handler);
        await log.waitFor(`${b}/u`);
        await unwatch();
        const sentinel = eventLog();
        const un2 = await xs.watch(`${b}/s`, sentinel.handler);
        await other.write(`${b}/u/x`, '1');
        await other.write(`${b}/s`, 'barrier');
        await sentinel.waitFor(`${b}/s`);
        await waitCount(sentinel, `${b}/s`, 2);
        expect(log.paths()).toEqual([`${b}/u`]);
        await un2();
      });

      it('removing an ancestor fires the watch with the watched path', async () => {
        const b = base();
        await xs.write(`${b}/anc/x/y`, '1');
        const log = eventLog();
        const unwatch = await xs.watch(`${b}/anc/x/y`, log.handler);
        await log.waitFor(`${b}/anc/x/y`);
        await other.rm(`${b}/anc`);
        await waitCount(log, `${b}/anc/x/y`, 2);
        await unwatch();
      });

      it('a relative watch reports relative paths', async () => {
        const rel = `xmemconf${process.pid}-w`;
        const log = eventLog();
        const unwatch = await xs.watch(rel, log.handler);
        await log.waitFor(rel);
        await other.write(`/local/domain/0/${rel}/k`, '1');
        await log.waitFor(`${rel}/k`);
        await unwatch();
        await xs.rm(`/local/domain/0/${rel}`);
      });

      it('transaction writes fire at commit, never before, and never on abort', async () => {
        const b = base();
        // Nodes exist beforehand and barriers live under another parent, so the barrier writes
        // do not touch anything the transaction read or wrote (C would fail the commit).
        await xs.write(`${b}/tx/committed`, '0');
        await xs.write(`${b}/tx/aborted`, '0');
        await xs.mkdir(`${b}/bar`);
        const log = eventLog();
        const unwatch = await xs.watch(b, log.handler);
        await log.waitFor(b);

        const t1 = await other.transactionStart();
        await other.write(`${b}/tx/committed`, '1', t1);
        await other.write(`${b}/bar/barrier1`, 'x'); // outside: its event is a barrier
        await log.waitFor(`${b}/bar/barrier1`);
        expect(log.paths()).not.toContain(`${b}/tx/committed`);
        await other.transactionEnd(t1, true);
        await log.waitFor(`${b}/tx/committed`);

        const t2 = await other.transactionStart();
        await other.write(`${b}/tx/aborted`, '1', t2);
        await other.transactionEnd(t2, false);
        await other.write(`${b}/bar/barrier2`, 'x');
        await log.waitFor(`${b}/bar/barrier2`);
        expect(log.paths()).not.toContain(`${b}/tx/aborted`);
        expect(await xs.read(`${b}/tx/aborted`)).toBe('0');
        await unwatch();
      });

      it('resetWatches drops every watch of the connection', async () => {
        const c = await connect();
        try {
          const b = base();
          const log = eventLog();
          await c.watch(`${b}/rw`, log.handler);
          await log.waitFor(`${b}/rw`);
          await c.resetWatches();
          const sentinel = eventLog();
          await c.watch(`${b}/rs`, sentinel.handler);
          await other.write(`${b}/rw/x`, '1');
          await other.write(`${b}/rs`, 'barrier');
          await waitCount(sentinel, `${b}/rs`, 2);
          expect(log.paths()).toEqual([`${b}/rw`]);
        } finally {
          await c.close();
        }
      });
    });

    describe('transactions', () => {
      it('isolates writes until commit; abort discards them', async () => {
        const b = base();
        const tx = await xs.transactionStart();
        await xs.write(`${b}/iso`, 'inside', tx);
        expect(await xs.read(`${b}/iso`, tx)).toBe('inside');
        expect(await other.tryRead(`${b}/iso`)).toBeNull();
        expect(await xs.directory(b, tx)).toEqual(['iso']);
        await xs.transactionEnd(tx, true);
        expect(await other.read(`${b}/iso`)).toBe('inside');

        const ab = await xs.transactionStart();
        await xs.write(`${b}/iso`, 'discarded', ab);
        await xs.transactionEnd(ab, false);
        expect(await other.read(`${b}/iso`)).toBe('inside');
      });

      it('a conflicting commit fails with EAGAIN and the transaction is gone', async () => {
        const b = base();
        await xs.write(`${b}/c`, '0');
        const tx = await xs.transactionStart();
        expect(await xs.read(`${b}/c`, tx)).toBe('0');
        await xs.write(`${b}/c`, 'tx', tx);
        await other.write(`${b}/c`, 'outside');
        expect((await rejection(xs.transactionEnd(tx, true))).errno).toBe('EAGAIN');
        expect(await xs.read(`${b}/c`)).toBe('outside');
        expect(['ENOENT', 'EIO']).toContain((await rejection(xs.read(`${b}/c`, tx))).errno);
      });

      it('transaction() retries a conflicted transaction to success', async () => {
        const b = base();
        await xs.write(`${b}/ctr`, '10');
        let attempts = 0;
        const result = await xs.transaction(async (tx) => {
          attempts++;
          const v = Number(await xs.read(`${b}/ctr`, tx));
          // Another writer changes the same node during the first attempt only.
          if (attempts === 1) await other.write(`${b}/ctr`, String(v + 100));
          await xs.write(`${b}/ctr`, String(v + 1), tx);
          return v + 1;
        });
        expect(attempts).toBe(2);
        expect(result).toBe(111);
        expect(await other.read(`${b}/ctr`)).toBe('111');
      });

      it('concurrent increments through transaction() lose no update', async () => {
        const b = base();
        await xs.write(`${b}/n`, '0');
        const clients = [xs, other];
        const per = 10;
        await Promise.all(
          clients.map(async (c) => {
            for (let i = 0; i < per; i++) {
              await c.transaction(async (tx) => {
                const v = Number(await c.read(`${b}/n`, tx));
                await c.write(`${b}/n`, String(v + 1), tx);
              });
            }
          }),
        );
        expect(await xs.read(`${b}/n`)).toBe(String(clients.length * per));
      });

      it('transaction() aborts and rethrows when the body fails', async () => {
        const b = base();
        await expect(
          xs.transaction(async (tx) => {
            await xs.write(`${b}/body`, 'no', tx);
            throw new Error('body failed');
          }),
        ).rejects.toThrow('body failed');
        expect(await xs.tryRead(`${b}/body`)).toBeNull();
      });
    });
  });
}

/** Waits until `path` has had `count` events. */
export async function waitCount(log: ReturnType<typeof eventLog>, path: string, count: number, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (log.paths().filter((p) => p === path).length < count) {
    if (Date.now() > deadline) throw new Error(`expected ${count} events for ${path}; got ${JSON.stringify(log.paths())}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
