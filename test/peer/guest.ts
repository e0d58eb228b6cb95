/**
 * An unprivileged domU on the real C xenstored, for tests: dom0 sets the domain's nodes up as
 * a toolstack would (libxl-like permissions), introduces the domid with XS_INTRODUCE, and the
 * returned client talks over that domain's ring (ring-transport.ts), so the daemon applies the
 * guest's permissions and quotas and resolves relative paths under /local/domain/<domid>.
 *
 *   const d = await startXenstored({ impl: 'c' });
 *   const g = await connectGuest(d, 5);
 *   await g.xs.write('data/xmem', '...');          // OK: the guest owns data/
 *   await g.xs.write('memory/target', '1');        // rejects EACCES
 *   await g.close();                               // releases the domain (C deletes nodes it owns)
 */
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import type { XenstoreClient, XsPerm } from '../../src/xenstore/types.js';
import type { PeerDaemon } from './daemon.js';
import { ringTransport } from './ring-transport.js';

export interface GuestOptions {
  /** Create the toolstack's nodes for the domain first (default true). */
  toolstackSetup?: boolean;
  /** memory/target and memory/static-max written by the toolstack (KiB; defaults 1 GiB / 2 GiB). */
  targetKib?: number;
  staticMaxKib?: number;
  /** Domain name written to /local/domain/<domid>/name (default `guest<domid>`). */
  name?: string;
}

export interface Guest {
  domid: number;
  home: string;
  /** The guest's own connection (unprivileged). */
  xs: XenstoreConnection;
  /** Releases the domain (XS_RELEASE from dom0) and closes the guest connection. */
  close(): Promise<void>;
}

const perm = (access: XsPerm['access'], domid: number): XsPerm => ({ access, domid });

/**
 * The nodes libxl creates for a domain, with its permissions: the home and memory/ are dom0's
 * and readable by the guest; data/ belongs to the guest (where its agent reports).
 */
export async function createGuestNodes(dom0: XenstoreClient, domid: number, opts: GuestOptions = {}): Promise<void> {
  const home = `/local/domain/${domid}`;
  const ro = [perm('n', 0), perm('r', domid)];
  await dom0.transaction(async (tx) => {
    await dom0.write(`${home}/name`, opts.name ?? `guest${domid}`, tx);
    await dom0.write(`${home}/domid`, String(domid), tx);
    await dom0.write(`${home}/memory/static-max`, String(opts.staticMaxKib ?? 2 * 1024 * 1024), tx);
    await dom0.write(`${home}/memory/target`, String(opts.targetKib ?? 1024 * 1024), tx);
    await dom0.mkdir(`${home}/data`, tx);
    for (const p of [home, `${home}/name`, `${home}/domid`, `${home}/memory`, `${home}/memory/static-max`, `${home}/memory/target`]) {
      await dom0.setPerms(p, ro, tx);
    }
    await dom0.setPerms(`${home}/data`, [perm('n', domid)], tx);
  });
}

export async function connectGuest(daemon: PeerDaemon, domid: number, opts: GuestOptions = {}): Promise<Guest> {
  if (daemon.impl !== 'c') throw new Error('guest emulation needs the C xenstored (oxenstored maps rings without the shim files)');
  if (!Number.isInteger(domid) || domid <= 0 || domid >= 0x7ff0) throw new Error(`bad guest domid ${domid}`);
  const dom0 = await connectXenstore({ path: daemon.socketPath, reconnect: false });
  try {
    if (opts.toolstackSetup !== false) await createGuestNodes(dom0, domid, opts);
    // mfn is ignored by the shim's grant mapping; the port must be non-zero.
    await dom0.introduce(domid, 1, 7);
  } catch (e) {
    await dom0.close();
    throw e;
  }
  const xs = await connectXenstore({ transport: ringTransport(daemon.ringDir, domid), reconnect: false });
  return {
    domid,
    home: `/local/domain/${domid}`,
    xs,
    close: async () => {
      await xs.close();
      await dom0.release(domid).catch(() => {});
      await dom0.close();
    },
  };
}
