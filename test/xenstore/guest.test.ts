import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { connectGuest, type Guest } from '../peer/guest.js';
import { eventLog, rejection } from './conformance.js';

/**
 * The client as an unprivileged domU on the real C xenstored (test/peer/guest.ts): what the
 * daemon lets a guest do with toolstack-style permissions.
 */

const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/xenstore/guest.test.ts: real C xenstored unavailable (${skip})`);

describe.skipIf(skip !== null)('a domU on the real C xenstored', () => {
  let daemon: PeerDaemon;
  let dom0: XenstoreConnection;
  let g: Guest;
  let other: Guest;

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
    dom0 = await connectXenstore({ path: daemon.socketPath });
    g = await connectGuest(daemon, 5, { targetKib: 524288 });
    other = await connectGuest(daemon, 6);
    await dom0.write('/vm-secret', 's3cr3t');
  });
  afterAll(async () => {
    await g?.close();
    await other?.close();
    await dom0?.close();
    await daemon?.stop();
  });

  it('resolves relative paths under its own home and reads its balloon target', async () => {
    expect(g.home).toBe('/local/domain/5');
    expect(await g.xs.read('memory/target')).toBe('524288');
    expect(await g.xs.read('/local/domain/5/memory/target')).toBe('524288');
    expect(await g.xs.getDomainPath(5)).toBe('/local/domain/5');
  });

  it('writes its own data/ subtree; the nodes are its own and dom0 reads them', async () => {
    await g.xs.write('data/xmem/report', '{"v":1}');
    expect(await g.xs.read('data/xmem/report')).toBe('{"v":1}');
    expect(await g.xs.getPerms('data/xmem/report')).toEqual([{ access: 'n', domid: 5 }]);
    expect(await dom0.read('/local/domain/5/data/xmem/report')).toBe('{"v":1}');
    await g.xs.rm('data/xmem');
    expect(await dom0.tryRead('/local/domain/5/data/xmem')).toBeNull();
  });

  it('gets EACCES writing memory/target and anywhere outside data/', async () => {
    for (const p of ['memory/target', 'memory/static-max', 'name', '/local/domain/0/x', '/local/domain/6/data/x', '/toplevel']) {
      expect((await rejection(g.xs.write(p, '1'))).errno, p).toBe('EACCES');
    }
    expect(await dom0.read('/local/domain/5/memory/target')).toBe('524288');
  });

  it('cannot read what it was not given, and cannot tell missing from hidden', async () => {
    expect((await rejection(g.xs.read('/vm-secret'))).errno).toBe('EACCES');
    expect((await rejection(g.xs.read('/local/domain/6/memory/target'))).errno).toBe('EACCES');
    expect((await rejection(g.xs.read('/nonexistent'))).errno).toBe('EACCES');
    expect((await rejection(g.xs.directory('/local/domain'))).errno).toBe('EACCES');
  });

  it('cannot do privileged operations or give its nodes away', async () => {
    expect((await rejection(g.xs.introduce(9, 1, 3))).errno).toBe('EACCES');
    expect((await rejection(g.xs.release(6))).errno).toBe('EACCES');
    expect((await rejection(g.xs.isIntroduced(0))).errno).toBe('EACCES');
    await g.xs.write('data/mine', 'x');
    expect((await rejection(g.xs.setPerms('data/mine', [{ access: 'n', domid: 6 }]))).errno).toBe('EPERM');
    expect((await rejection(g.xs.setPerms('memory/target', [{ access: 'n', domid: 5 }]))).errno).toBe('EACCES');
  });

  it('is held to the entry-size quota that dom0 is exempt from', async () => {
    const big = 'x'.repeat(3000);
    expect((await rejection(g.xs.write('data/big', big))).errno).toBe('ENOSPC');
    await dom0.write('/local/domain/5/data/big', big);
  });

  it('watches its memory/target and sees dom0 change it (the balloon flow)', async () => {
    const log = eventLog();
    const unwatch = await g.xs.watch('memory/target', log.handler);
    await log.waitFor('memory/target');
    await dom0.write('/local/domain/5/memory/target', '262144');
    await dom0.write('/local/domain/6/memory/target', '1'); // another guest's: never seen
    await new Promise((r) => setTimeout(r, 5));
    const deadline = Date.now() + 3000;
    while (log.events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(log.paths()).toEqual(['memory/target', 'memory/target']);
    expect(await g.xs.read('memory/target')).toBe('262144');
    await unwatch();
  });

  it('sees only the initial event of a watch on another guest', async () => {
    const log = eventLog();
    const unwatch = await g.xs.watch('/local/domain/6/memory', log.handler);
    await log.waitFor('/local/domain/6/memory');
    await dom0.write('/local/domain/6/memory/target', '2');
    // Barrier: an event the guest may see, sent after the one it must not.
    const own = eventLog();
    const un2 = await g.xs.watch('data', own.handler);
    await dom0.write('/local/domain/5/data/barrier', '1');
    await own.waitFor('data/barrier');
    expect(log.paths()).toEqual(['/local/domain/6/memory']);
    await unwatch();
    await un2();
  });

  it('retries a transaction that conflicts with dom0 (read of memory/target)', async () => {
    let attempts = 0;
    await g.xs.transaction(async (tx) => {
      attempts++;
      const target = await g.xs.read('memory/target', tx);
      if (attempts === 1) await dom0.write('/local/domain/5/memory/target', '131072');
      await g.xs.write('data/seen-target', target, tx);
    });
    expect(attempts).toBe(2);
    expect(await dom0.read('/local/domain/5/data/seen-target')).toBe('131072');
  });
});
