import type { XsPerm } from '../types.js';
import { xsErr } from './errors.js';
import { baseName, canonical, isAtOrBelow, isSpecial, parentOf, relativise } from './paths.js';

/**
 * The in-process xenstore daemon: a node tree with permissions, watches and transactions,
 * following the C xenstored's semantics (xenstored_core.c, xenstored_transaction.c,
 * xenstored_watch.c) so code tested against it behaves the same on a real host. It is the
 * zero-install store for `xmem demo` and the fast virtual-clock simulator; the conformance
 * suite runs against it and the real daemons alike.
 */

export interface Node {
  value: string;
  perms: XsPerm[];
  /** Child names in creation order (the C daemon lists them that way). */
  children: string[];
}

/** Who is asking: dom0 is privileged (full access to everything). */
export interface Caller {
  domid: number;
  id: number; // connection id, owner of watches and transactions
}

export interface WatchSink {
  deliver(path: string, token: string, watchKey: string): void;
}

interface Watch {
  caller: Caller;
  path: string; // canonical absolute, or @special
  token: string;
  relative: boolean;
  sink: WatchSink;
  key: string;
  seq: number;
}

interface Tx {
  caller: Caller;
  startGen: number;
  overlay: Map<string, Node | null>;
  accessed: Set<string>;
  events: { path: string; recurse: boolean; perms: XsPerm[] }[];
}

/** C xenstored quotas (xenstored_core.c) that guests can hit. */
export const QUOTA = { maxEntrySize: 2048, watchesPerDomain: 128, transactionsPerConn: 10 } as const;

type Access = 'r' | 'w';

export class EmbeddedStore {
  private readonly nodes = new Map<string, Node>();
  /** Generation of the last change to each path (including deletions), for tx conflicts. */
  private readonly changedAt = new Map<string, number>();
  private gen = 0;
  private readonly watches: Watch[] = [];
  private readonly byPath = new Map<string, Watch[]>();
  private readonly liveKeys = new Set<string>();
  private watchSeq = 0;
  private readonly txs = new Map<number, Tx>();
  private nextTx = 1;
  private nextConn = 1;
  private readonly introduced = new Set<number>([0]);

  constructor() {
    const root: XsPerm[] = [{ domid: 0, access: 'n' }];
    this.nodes.set('/', { value: '', perms: root, children: ['tool', 'local'] });
    this.nodes.set('/tool', { value: '', perms: root, children: [] });
    this.nodes.set('/local', { value: '', perms: root, children: ['domain'] });
    this.nodes.set('/local/domain', { value: '', perms: root, children: [] });
  }

  newCaller(domid: number): Caller {
    return { domid, id: this.nextConn++ };
  }

  // ---- reading ------------------------------------------------------------------------------

  read(c: Caller, path: string, tx: number): string {
    return this.need(c, this.path(c, path), 'r', tx).value;
  }

  directory(c: Caller, path: string, tx: number): string[] {
    return [...this.need(c, this.path(c, path), 'r', tx).children];
  }

  getPerms(c: Caller, path: string, tx: number): XsPerm[] {
    return this.need(c, this.path(c, path), 'r', tx).perms.map((p) => ({ ...p }));
  }

  // ---- writing ------------------------------------------------------------------------------

  write(c: Caller, path: string, value: string, tx: number): void {
    if (c.domid !== 0 && Buffer.byteLength(value) > QUOTA.maxEntrySize) throw xsErr('ENOSPC', `value too large for ${path}`);
    const abs = this.path(c, path);
    const t = this.tx(c, tx);
    const existing = this.get(abs, t);
    if (existing) {
      this.check(c, existing, 'w', abs);
      this.put(abs, { ...existing, value }, t);
    } else {
      this.create(c, abs, value, t);
    }
    this.changed(abs, false, this.get(abs, t)!.perms, t);
  }

  mkdir(c: Caller, path: string, tx: number): void {
    const abs = this.path(c, path);
    const t = this.tx(c, tx);
    const existing = this.get(abs, t);
    if (existing) {
      this.check(c, existing, 'w', abs);
      return;
    }
    this.create(c, abs, '', t);
    this.changed(abs, false, this.get(abs, t)!.perms, t);
  }

  rm(c: Caller, path: string, tx: number): void {
    const abs = this.path(c, path);
    if (abs === '/') throw xsErr('EINVAL', 'cannot remove /');
    const t = this.tx(c, tx);
    const node = this.get(abs, t);
    if (!node) {
      // The C daemon acks removing a missing node whose parent exists.
      const parent = this.get(parentOf(abs)!, t);
      if (parent) {
        this.check(c, parent, 'w', abs);
        return;
      }
      throw this.missing(c, abs, 'w', t);
    }
    this.check(c, node, 'w', abs);
    const perms = node.perms;
    this.removeTree(abs, t);
    const parentPath = parentOf(abs)!;
    const parent = this.get(parentPath, t)!;
    this.put(parentPath, { ...parent, children: parent.children.filter((n) => n !== baseName(abs)) }, t);
    this.changed(abs, true, perms, t);
  }

  setPerms(c: Caller, path: string, perms: XsPerm[], tx: number): void {
    if (perms.length === 0) throw xsErr('EINVAL', 'empty permission list');
    for (const p of perms) {
      if (!['n', 'r', 'w', 'b'].includes(p.access) || !Number.isInteger(p.domid) || p.domid < 0 || p.domid > 0xffff) {
        throw xsErr('EINVAL', `malformed permission ${JSON.stringify(p)}`);
      }
    }
    const abs = this.path(c, path);
    const t = this.tx(c, tx);
    const node = this.need(c, abs, 'r', tx);
    // Only the owner (or dom0) may change permissions.
    if (c.domid !== 0 && node.perms[0]!.domid !== c.domid) throw xsErr('EACCES', `not the owner of ${abs}`);
    this.put(abs, { ...node, perms: perms.map((p) => ({ ...p })) }, t);
    this.changed(abs, false, perms, t);
  }

  // ---- transactions -------------------------------------------------------------------------

  transactionStart(c: Caller): number {
    let open = 0;
    for (const t of this.txs.values()) if (t.caller.id === c.id) open++;
    if (open >= QUOTA.transactionsPerConn) throw xsErr('ENOSPC', 'too many open transactions');
    const id = this.nextTx++;
    this.txs.set(id, { caller: c, startGen: this.gen, overlay: new Map(), accessed: new Set(), events: [] });
    return id;
  }

  transactionEnd(c: Caller, id: number, commit: boolean): void {
    const t = this.txs.get(id);
    if (!t || t.caller.id !== c.id) throw xsErr('ENOENT', `no transaction ${id}`);
    this.txs.delete(id);
    if (commit) {
      // Optimistic concurrency, as the C daemon: any node this transaction looked at or
      // changed that someone else changed since it started makes the commit fail.
      for (const p of t.accessed) {
        if ((this.changedAt.get(p) ?? -1) > t.startGen) {
          this.pruneHistory();
          throw xsErr('EAGAIN', 'transaction conflict; retry');
        }
      }
      const g = ++this.gen;
      for (const [p, n] of t.overlay) {
        if (n === null) this.nodes.delete(p);
        else this.nodes.set(p, n);
        this.changedAt.set(p, g);
      }
      for (const ev of t.events) this.fire(ev.path, ev.recurse, ev.perms);
    }
    this.pruneHistory();
  }

  /** Aborts every transaction a closing connection left open. */
  dropCaller(c: Caller): void {
    for (const [id, t] of this.txs) if (t.caller.id === c.id) this.txs.delete(id);
    this.removeWatches((w) => w.caller.id === c.id);
    this.pruneHistory();
  }

  // ---- watches ------------------------------------------------------------------------------

  watch(c: Caller, path: string, token: string, sink: WatchSink): string {
    const relative = !path.startsWith('/') && !path.startsWith('@');
    const abs = isSpecial(path) ? path : canonical(path, c.domid);
    if (abs === null) throw xsErr('EINVAL', `invalid watch path ${JSON.stringify(path)}`);
    if (this.byPath.get(abs)?.some((w) => w.caller.id === c.id && w.token === token)) {
      throw xsErr('EEXIST', `watch ${path} ${token} exists`);
    }
    if (c.domid !== 0 && this.watches.filter((w) => w.caller.domid === c.domid).length >= QUOTA.watchesPerDomain) {
      throw xsErr('E2BIG', 'too many watches');
    }
    const key = `${c.id}\u0000${abs}\u0000${token}`;
    const w: Watch = { caller: c, path: abs, token, relative, sink, key, seq: this.watchSeq++ };
    this.watches.push(w);
    this.liveKeys.add(key);
    const list = this.byPath.get(abs);
    if (list) list.push(w);
    else this.byPath.set(abs, [w]);
    // The daemon fires every new watch once, with the path as registered.
    sink.deliver(path, token, key);
    return key;
  }

  unwatch(c: Caller, path: string, token: string): void {
    const abs = isSpecial(path) ? path : canonical(path, c.domid);
    const w = this.watches.find((x) => x.caller.id === c.id && x.path === abs && x.token === token);
    if (!w) throw xsErr('ENOENT', `no watch ${path} ${token}`);
    this.removeWatches((x) => x === w);
  }

  hasWatch(key: string): boolean {
    return this.liveKeys.has(key);
  }

  resetWatches(c: Caller): void {
    this.removeWatches((w) => w.caller.id === c.id);
  }

  private removeWatches(match: (w: Watch) => boolean): void {
    for (let i = this.watches.length - 1; i >= 0; i--) {
      const w = this.watches[i]!;
      if (!match(w)) continue;
      this.watches.splice(i, 1);
      this.liveKeys.delete(w.key);
      const list = this.byPath.get(w.path)!;
      list.splice(list.indexOf(w), 1);
      if (list.length === 0) this.byPath.delete(w.path);
    }
  }

  // ---- domains ------------------------------------------------------------------------------

  introduce(c: Caller, domid: number): void {
    if (c.domid !== 0) throw xsErr('EACCES', 'introduce needs dom0');
    if (!Number.isInteger(domid) || domid <= 0 || domid > 0x7fef) throw xsErr('EINVAL', `bad domid ${domid}`);
    this.introduced.add(domid);
    this.fire('@introduceDomain', false, null);
  }

  release(c: Caller, domid: number): void {
    if (c.domid !== 0) throw xsErr('EACCES', 'release needs dom0');
    if (!this.introduced.delete(domid)) throw xsErr('ENOENT', `domain ${domid} not introduced`);
    this.fire('@releaseDomain', false, null);
  }

  isIntroduced(c: Caller, domid: number): boolean {
    if (c.domid !== 0) throw xsErr('EACCES', 'is_domain_introduced needs dom0');
    return this.introduced.has(domid);
  }

  // ---- internals ----------------------------------------------------------------------------

  private path(c: Caller, path: string): string {
    const abs = canonical(path, c.domid);
    if (abs === null) throw xsErr('EINVAL', `invalid path ${JSON.stringify(path).slice(0, 80)}`);
    return abs;
  }

  private tx(c: Caller, id: number): Tx | null {
    if (!id) return null;
    const t = this.txs.get(id);
    if (!t || t.caller.id !== c.id) throw xsErr('ENOENT', `no transaction ${id}`);
    return t;
  }

  private get(abs: string, t: Tx | null): Node | undefined {
    if (t) {
      t.accessed.add(abs);
      if (t.overlay.has(abs)) return t.overlay.get(abs) ?? undefined;
    }
    return this.nodes.get(abs);
  }

  private put(abs: string, node: Node | null, t: Tx | null): void {
    if (t) {
      t.accessed.add(abs);
      t.overlay.set(abs, node);
      return;
    }
    if (node === null) this.nodes.delete(abs);
    else this.nodes.set(abs, node);
    this.gen++;
    if (this.txs.size > 0) this.changedAt.set(abs, this.gen);
  }

  private allowed(c: Caller, perms: XsPerm[], want: Access): boolean {
    if (c.domid === 0) return true;
    const owner = perms[0]!;
    if (owner.domid === c.domid) return true;
    const entry = perms.slice(1).find((p) => p.domid === c.domid) ?? owner;
    return entry.access === 'b' || entry.access === want;
  }

  private check(c: Caller, node: Node, want: Access, abs: string): void {
    if (!this.allowed(c, node.perms, want)) throw xsErr('EACCES', `${want === 'r' ? 'read' : 'write'} ${abs}`);
  }

  private need(c: Caller, abs: string, want: Access, txId: number): Node {
    const t = this.tx(c, txId);
    const node = this.get(abs, t);
    if (!node) throw this.missing(c, abs, want, t);
    this.check(c, node, want, abs);
    return node;
  }

  /** ENOENT, unless the caller may not even know: then EACCES (errno_from_parents). */
  private missing(c: Caller, abs: string, want: Access, t: Tx | null): Error {
    let p = parentOf(abs);
    while (p !== null) {
      const n = this.get(p, t);
      if (n) return this.allowed(c, n.perms, want) ? xsErr('ENOENT', abs) : xsErr('EACCES', abs);
      p = parentOf(p);
    }
    return xsErr('ENOENT', abs);
  }

  /** Creates abs and any missing ancestors; the nearest existing ancestor must be writable. */
  private create(c: Caller, abs: string, value: string, t: Tx | null): void {
    const chain: string[] = [];
    let p: string | null = abs;
    while (p !== null && !this.get(p, t)) {
      chain.push(p);
      p = parentOf(p);
    }
    let parentPath = p!;
    let parent = this.get(parentPath, t)!;
    this.check(c, parent, 'w', abs);
    for (const path of chain.reverse()) {
      // Children inherit the parent's permissions; a guest owns what it creates.
      const perms = parent.perms.map((x) => ({ ...x }));
      if (c.domid !== 0) perms[0] = { ...perms[0]!, domid: c.domid };
      const node: Node = { value: path === abs ? value : '', perms, children: [] };
      this.put(parentPath, { ...parent, children: [...parent.children, baseName(path)] }, t);
      this.put(path, node, t);
      parentPath = path;
      parent = node;
    }
  }

  private removeTree(abs: string, t: Tx | null): void {
    const node = this.get(abs, t);
    if (!node) return;
    for (const name of node.children) this.removeTree(abs === '/' ? `/${name}` : `${abs}/${name}`, t);
    this.put(abs, null, t);
  }

  private changed(abs: string, recurse: boolean, perms: XsPerm[], t: Tx | null): void {
    if (t) t.events.push({ path: abs, recurse, perms });
    else this.fire(abs, recurse, perms);
  }

  private fire(abs: string, recurse: boolean, perms: XsPerm[] | null): void {
    // Watches on the node and on each ancestor (looked up by path: O(depth), not O(watches)).
    const hits: { w: Watch; path: string }[] = [];
    if (isSpecial(abs)) {
      for (const w of this.byPath.get(abs) ?? []) hits.push({ w, path: abs });
    } else {
      for (let p: string | null = abs; p !== null; p = parentOf(p)) {
        for (const w of this.byPath.get(p) ?? []) hits.push({ w, path: abs });
      }
      // A removed subtree also fires the watches set below it, with their own path.
      if (recurse) {
        for (const w of this.watches) if (w.path !== abs && !isSpecial(w.path) && isAtOrBelow(w.path, abs)) hits.push({ w, path: w.path });
      }
    }
    hits.sort((a, b) => a.w.seq - b.w.seq); // registration order, as one daemon queue would
    for (const { w, path } of hits) {
      // A watcher only hears about nodes it may read.
      if (perms && !this.allowed(w.caller, perms, 'r')) continue;
      w.sink.deliver(relativise(path, w.relative, w.caller.domid), w.token, w.key);
    }
  }

  /** Change history is only needed while a transaction is open. */
  private pruneHistory(): void {
    if (this.txs.size === 0) this.changedAt.clear();
  }
}
