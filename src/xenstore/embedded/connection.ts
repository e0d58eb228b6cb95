import { EventEmitter } from 'node:events';
import type { TxId, WatchHandler, XenstoreClient, XsPerm } from '../types.js';
import { xsErr } from './errors.js';
import { homeOf } from './paths.js';

/** XENSTORE_PAYLOAD_MAX (xs_wire.h). */
const PAYLOAD_MAX = 4096;
import type { Caller, EmbeddedStore } from './store.js';

/**
 * One client connection to the embedded store, acting as domain `domid` (0 = privileged dom0).
 * Replies are asynchronous like a socket's and watch events arrive on a later microtask, so
 * code cannot come to depend on a synchronous store it will never meet on a real host.
 */
export class EmbeddedConnection extends EventEmitter implements XenstoreClient {
  private readonly caller: Caller;
  private closed = false;
  private nextToken = 1;

  constructor(private readonly store: EmbeddedStore, readonly domid: number) {
    super();
    this.caller = store.newCaller(domid);
  }

  private async op<T>(fn: () => T): Promise<T> {
    await Promise.resolve();
    if (this.closed) throw xsErr('ENOTCONN', 'connection closed', true);
    return fn();
  }

  read(path: string, tx: TxId = 0): Promise<string> {
    return this.op(() => this.store.read(this.caller, path, tx));
  }

  async tryRead(path: string, tx: TxId = 0): Promise<string | null> {
    try {
      return await this.read(path, tx);
    } catch (err) {
      if ((err as { errno?: string }).errno === 'ENOENT') return null;
      throw err;
    }
  }

  write(path: string, value: string, tx: TxId = 0): Promise<void> {
    return this.op(() => {
      // The wire's payload limit applies to every client, embedded or not.
      const size = Buffer.byteLength(path) + 1 + Buffer.byteLength(value);
      if (size > PAYLOAD_MAX) throw xsErr('E2BIG', `payload of ${size} bytes exceeds the ${PAYLOAD_MAX}-byte xenstore limit`, true);
      this.store.write(this.caller, path, value, tx);
    });
  }

  directory(path: string, tx: TxId = 0): Promise<string[]> {
    return this.op(() => this.store.directory(this.caller, path, tx));
  }

  mkdir(path: string, tx: TxId = 0): Promise<void> {
    return this.op(() => this.store.mkdir(this.caller, path, tx));
  }

  rm(path: string, tx: TxId = 0): Promise<void> {
    return this.op(() => this.store.rm(this.caller, path, tx));
  }

  getPerms(path: string, tx: TxId = 0): Promise<XsPerm[]> {
    return this.op(() => this.store.getPerms(this.caller, path, tx));
  }

  setPerms(path: string, perms: XsPerm[], tx: TxId = 0): Promise<void> {
    return this.op(() => this.store.setPerms(this.caller, path, perms, tx));
  }

  async watch(path: string, handler: WatchHandler): Promise<() => Promise<void>> {
    const token = `emb${this.nextToken++}`;
    await this.op(() => this.store.watch(this.caller, path, token, this.sink(handler)));
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      if (!this.closed) await this.op(() => this.store.unwatch(this.caller, path, token));
    };
  }

  private sink(handler: WatchHandler) {
    return {
      deliver: (path: string, token: string, key: string) => {
        queueMicrotask(() => {
          // Unwatched (or closed) between the change and delivery: drop, as a client would.
          if (this.closed || !this.store.hasWatch(key)) return;
          try {
            handler({ path, token });
          } catch (err) {
            this.emit('error', err);
          }
        });
      },
    };
  }

  transactionStart(): Promise<TxId> {
    return this.op(() => this.store.transactionStart(this.caller));
  }

  transactionEnd(tx: TxId, commit: boolean): Promise<void> {
    return this.op(() => this.store.transactionEnd(this.caller, tx, commit));
  }

  async transaction<T>(fn: (tx: TxId) => Promise<T>): Promise<T> {
    const attempts = 16;
    for (let i = 1; ; i++) {
      const tx = await this.transactionStart();
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        await this.transactionEnd(tx, false).catch(() => {});
        throw err;
      }
      try {
        await this.transactionEnd(tx, true);
        return result;
      } catch (err) {
        if ((err as { errno?: string }).errno !== 'EAGAIN' || i >= attempts) throw err;
      }
    }
  }

  getDomainPath(domid: number): Promise<string> {
    return this.op(() => homeOf(domid));
  }

  introduce(domid: number, _mfn: number, _port: number): Promise<void> {
    return this.op(() => this.store.introduce(this.caller, domid));
  }

  release(domid: number): Promise<void> {
    return this.op(() => this.store.release(this.caller, domid));
  }

  isIntroduced(domid: number): Promise<boolean> {
    return this.op(() => this.store.isIntroduced(this.caller, domid));
  }

  resetWatches(): Promise<void> {
    return this.op(() => this.store.resetWatches(this.caller));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.store.dropCaller(this.caller);
    this.emit('close');
  }
}
