/**
 * The xenstore client contract shared by dom0 (unix socket) and guests (/dev/xen/xenbus).
 * Implementation: src/xenstore/client.ts. Paths may be absolute (`/local/domain/3/x`) or
 * relative to the connection's own domain home (`data/xmem`).
 */

/** Transaction handle; 0 = no transaction. */
export type TxId = number;

/** One permission entry: `n` none, `r` read, `w` write, `b` both; entry 0 is the owner/default. */
export interface XsPerm {
  domid: number;
  access: 'n' | 'r' | 'w' | 'b';
}

export interface WatchEvent {
  /** Path of the node that changed (relative if the watch was registered relative). */
  path: string;
  token: string;
}

export type WatchHandler = (ev: WatchEvent) => void;

export interface XenstoreClient {
  read(path: string, tx?: TxId): Promise<string>;
  /** Like read, but resolves null for ENOENT instead of rejecting. */
  tryRead(path: string, tx?: TxId): Promise<string | null>;
  write(path: string, value: string, tx?: TxId): Promise<void>;
  directory(path: string, tx?: TxId): Promise<string[]>;
  mkdir(path: string, tx?: TxId): Promise<void>;
  rm(path: string, tx?: TxId): Promise<void>;
  getPerms(path: string, tx?: TxId): Promise<XsPerm[]>;
  setPerms(path: string, perms: XsPerm[], tx?: TxId): Promise<void>;
  /** Registers a watch; the handler also gets the daemon's initial event. Returns an unwatch fn. */
  watch(path: string, handler: WatchHandler): Promise<() => Promise<void>>;
  transactionStart(): Promise<TxId>;
  transactionEnd(tx: TxId, commit: boolean): Promise<void>;
  /** Runs fn in a transaction and retries the whole thing on EAGAIN (bounded attempts). */
  transaction<T>(fn: (tx: TxId) => Promise<T>): Promise<T>;
  getDomainPath(domid: number): Promise<string>;
  introduce(domid: number, mfn: number, port: number): Promise<void>;
  release(domid: number): Promise<void>;
  isIntroduced(domid: number): Promise<boolean>;
  resetWatches(): Promise<void>;
  close(): Promise<void>;
}
