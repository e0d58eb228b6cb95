import { describe, expect, it } from 'vitest';
import { connectEmbedded, EmbeddedStore } from '../../src/xenstore/embedded/index.js';
import type { WatchEvent } from '../../src/xenstore/types.js';

// What the conformance suite (run as dom0) cannot show: a guest's view, as the simulator
// uses it — the C daemon's permission rules for an unprivileged domain.
async function toolstack() {
  const store = new EmbeddedStore();
  const dom0 = connectEmbedded(store, 0);
  await dom0.mkdir('/local/domain/5');
  await dom0.setPerms('/local/domain/5', [{ domid: 0, access: 'n' }, { domid: 5, access: 'r' }]);
  await dom0.write('/local/domain/5/memory/target', '262144');
  await dom0.mkdir('/local/domain/5/data');
  await dom0.setPerms('/local/domain/5/data', [{ domid: 5, access: 'n' }]);
  return { store, dom0, guest: connectEmbedded(store, 5), other: connectEmbedded(store, 6) };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('embedded xenstore as seen by a guest', () => {
  it('a guest reads its target but cannot write it; it writes its data/ and owns what it creates', async () => {
    const { guest, dom0 } = await toolstack();
    expect(await guest.read('memory/target')).toBe('262144');
    await expect(guest.write('memory/target', '1')).rejects.toMatchObject({ errno: 'EACCES' });
    await guest.write('data/xmem', '{"v":1}');
    expect(await dom0.read('/local/domain/5/data/xmem')).toBe('{"v":1}');
    expect((await dom0.getPerms('/local/domain/5/data/xmem'))[0]).toEqual({ domid: 5, access: 'n' });
  });

  it('another guest can neither read nor learn whether a node exists', async () => {
    const { other } = await toolstack();
    await expect(other.read('/local/domain/5/memory/target')).rejects.toMatchObject({ errno: 'EACCES' });
    await expect(other.read('/local/domain/5/data/nothing')).rejects.toMatchObject({ errno: 'EACCES' });
    await expect(other.write('/local/domain/5/data/x', 'y')).rejects.toMatchObject({ errno: 'EACCES' });
  });

  it('a guest value over 2048 bytes hits the C daemon quota (ENOSPC); dom0 has none', async () => {
    const { guest, dom0 } = await toolstack();
    await expect(guest.write('data/big', 'x'.repeat(2049))).rejects.toMatchObject({ errno: 'ENOSPC' });
    await dom0.write('/local/domain/5/data/big', 'x'.repeat(3000));
  });

  it('watch events only reach watchers that may read the node', async () => {
    const { dom0, other, guest } = await toolstack();
    const seen: WatchEvent[] = [];
    await other.watch('/local/domain/5', (e) => seen.push(e));
    await flush();
    expect(seen.map((e) => e.path)).toEqual(['/local/domain/5']); // the initial event only
    await guest.write('data/xmem', 'a');
    await dom0.write('/local/domain/5/memory/target', '1');
    await flush();
    expect(seen).toHaveLength(1);
  });

  it('a guest watching memory/target relatively sees relative paths (the balloon driver)', async () => {
    const { dom0, guest } = await toolstack();
    const seen: string[] = [];
    await guest.watch('memory/target', (e) => seen.push(e.path));
    await dom0.write('/local/domain/5/memory/target', '131072');
    await flush();
    expect(seen).toEqual(['memory/target', 'memory/target']);
  });

  it('closing a connection drops its watches and open transactions', async () => {
    const { dom0, store } = await toolstack();
    const c = connectEmbedded(store, 0);
    const seen: string[] = [];
    await c.watch('/x', (e) => seen.push(e.path));
    const tx = await c.transactionStart();
    await c.write('/x/in-tx', '1', tx);
    await c.close();
    await dom0.write('/x/after', '1');
    await flush();
    expect(seen).toEqual(['/x']);
    expect(await dom0.tryRead('/x/in-tx')).toBeNull();
    await expect(c.read('/x/after')).rejects.toMatchObject({ errno: 'ENOTCONN' });
  });

  it('a transaction that only read a node still conflicts when someone changed it', async () => {
    const { dom0, store } = await toolstack();
    const a = connectEmbedded(store, 0);
    await dom0.write('/ctr', '1');
    const tx = await a.transactionStart();
    expect(await a.read('/ctr', tx)).toBe('1');
    await a.write('/elsewhere', 'derived', tx);
    await dom0.write('/ctr', '2');
    await expect(a.transactionEnd(tx, true)).rejects.toMatchObject({ errno: 'EAGAIN' });
    expect(await dom0.tryRead('/elsewhere')).toBeNull();
  });
});
