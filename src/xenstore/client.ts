import { EventEmitter } from 'node:events';
import { XenstoreError, isXenstoreError } from './errors.js';
import { formatPerm, parsePerm } from './perms.js';
import type { Transport, TransportFactory, TransportSink } from './transport.js';
import type { TxId, WatchEvent, WatchHandler, XenstoreClient, XsPerm } from './types.js';
import { defaultXenstorePath, transportFor } from './endpoint.js';
import { FrameDecoder, XsOp, encodeRequest, firstString, opName, payloadSize, splitNul } from './wire.js';

export { defaultXenstorePath } from './endpoint.js';

/** The subset of a pino logger the client uses. */
export interface XsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ConnectOptions {
  /** Socket or device path; default: XENSTORED_PATH, $XENSTORED_RUNDIR/socket, /var/run/xenstored/socket, /dev/xen/xenbus. */
  path?: string;
  logger?: XsLogger;
  /** Reconnect after a lost connection (default true). */
  reconnect?: boolean;
  /** Reconnect backoff: first delay and cap in ms (defaults 50 and 2000). */
  backoffMs?: { initial: number; max: number };
  /** Use this transport instead of one chosen from `path` (tests: the guest ring). */
  transport?: TransportFactory;
}

export interface TransactionOptions {
  /** Attempts before the last EAGAIN is thrown (default 32). */
  maxAttempts?: number;
}

/** Connects to xenstored; resolves once the first connection is up. */
export async function connectXenstore(opts: ConnectOptions = {}): Promise<XenstoreConnection> {
  const factory = opts.transport ?? transportFor(opts.path ?? defaultXenstorePath());
  const c = new XenstoreConnection(factory, opts);
  await c.open();
  return c;
}

// How a successful reply payload becomes the promised value (indexes, not closures: hot path).
const R_VOID = 0, R_STRING = 1, R_LIST = 2, R_PERMS = 3, R_TXID = 4, R_FIRST = 5, R_BOOL = 6;

interface Pending {
  op: number;
  reqId: number;
  txId: number;
  path: string;
  result: number;
  resolve: (v: any) => void;
  reject: (e: Error) => void;
}

interface Queued extends Pending {
  args: readonly string[];
  tail: string | undefined;
}

interface WatchEntry {
  path: string;
  handler: WatchHandler;
}

/**
 * One logical connection to xenstored over a replaceable transport. Requests are answered in
 * order, so in-flight requests are a FIFO; watch events (type 15) are dispatched wherever they
 * appear in the stream (C sends a writer's own event before its reply, oxenstored after).
 *
 * Events: 'disconnect' (err) when the transport is lost, 'reconnect' once a new transport is up
 * and every watch is registered again (the daemon then sends each watch's initial event, so
 * watchers re-read what they may have missed).
 */
export class XenstoreConnection extends EventEmitter implements XenstoreClient {
  private transport: Transport | null = null;
  private readonly inflight: Pending[] = [];
  private inflightHead = 0;
  /** Requests made while disconnected; sent after the watches are restored. */
  private waiting: Queued[] = [];
  private nextReqId = 1;
  private nextToken = 1;
  private readonly watches = new Map<string, WatchEntry>();
  /** Transaction ids started on the current transport. */
  private readonly liveTx = new Set<number>();
  /** Ids that were live when a transport was lost: the daemon forgot them. */
  private readonly lostTx = new Set<number>();
  private closed = false;
  private reconnecting = false;
  private readonly decoder: FrameDecoder;
  private readonly sink: TransportSink;
  private readonly log: XsLogger | undefined;

  constructor(
    private readonly factory: TransportFactory,
    private readonly opts: ConnectOptions = {},
  ) {
    super();
    this.log = opts.logger;
    this.decoder = new FrameDecoder(
      (type, reqId, txId, payload) => this.onFrame(type, reqId, payload),
      (why) => this.protocolError(why),
    );
    this.sink = {
      onData: (chunk) => this.decoder.push(chunk),
      onClose: (err) => this.lost(err),
    };
  }

  /** Opens the first transport (connectXenstore calls this). */
  async open(): Promise<void> {
    this.transport = await this.factory(this.sink);
  }

  get connected(): boolean {
    return this.transport !== null && !this.reconnecting;
  }

  // ---- the XenstoreClient operations ----

  read(p: string, tx: TxId = 0): Promise<string> {
    return this.request(XsOp.READ, tx, [p], undefined, R_STRING);
  }

  async tryRead(p: string, tx: TxId = 0): Promise<string | null> {
    try {
      return await this.request<string>(XsOp.READ, tx, [p], undefined, R_STRING);
    } catch (e) {
      if (isXenstoreError(e, 'ENOENT')) return null;
      throw e;
    }
  }

  write(p: string, value: string, tx: TxId = 0): Promise<void> {
    return this.request(XsOp.WRITE, tx, [p], value, R_VOID);
  }

  directory(p: string, tx: TxId = 0): Promise<string[]> {
    return this.request(XsOp.DIRECTORY, tx, [p], undefined, R_LIST);
  }

  mkdir(p: string, tx: TxId = 0): Promise<void> {
    return this.request(XsOp.MKDIR, tx, [p], undefined, R_VOID);
  }

  rm(p: string, tx: TxId = 0): Promise<void> {
    return this.request(XsOp.RM, tx, [p], undefined, R_VOID);
  }

  getPerms(p: string, tx: TxId = 0): Promise<XsPerm[]> {
    return this.request(XsOp.GET_PERMS, tx, [p], undefined, R_PERMS);
  }

  setPerms(p: string, perms: XsPerm[], tx: TxId = 0): Promise<void> {
    let strs: string[];
    try {
      if (perms.length === 0) throw new Error('at least one permission (the owner) is required');
      strs = perms.map(formatPerm);
    } catch (e) {
      return Promise.reject(new XenstoreError('EINVAL', 'SET_PERMS', p, true, (e as Error).message));
    }
    return this.request(XsOp.SET_PERMS, tx, [p, ...strs], undefined, R_VOID);
  }

  async watch(p: string, handler: WatchHandler): Promise<() => Promise<void>> {
    const token = `xmem${this.nextToken++}`;
    // Registered before sending: the initial event may precede the reply.
    this.watches.set(token, { path: p, handler });
    try {
      await this.request(XsOp.WATCH, 0, [p, token], undefined, R_VOID);
    } catch (e) {
      this.watches.delete(token);
      throw e;
    }
    return async () => {
      if (!this.watches.delete(token)) return;
      try {
        await this.request(XsOp.UNWATCH, 0, [p, token], undefined, R_VOID);
      } catch (e) {
        // Already gone on the daemon (reset, reconnect, closed): nothing left to undo.
        if (!isXenstoreError(e) || !['ENOENT', 'ECONNRESET', 'ENOTCONN'].includes(e.errno)) throw e;
      }
    };
  }

  async transactionStart(): Promise<TxId> {
    const tx = await this.request<number>(XsOp.TRANSACTION_START, 0, [''], undefined, R_TXID);
    this.lostTx.delete(tx);
    this.liveTx.add(tx);
    return tx;
  }

  async transactionEnd(tx: TxId, commit: boolean): Promise<void> {
    try {
      await this.request(XsOp.TRANSACTION_END, tx, [commit ? 'T' : 'F'], undefined, R_VOID);
    } finally {
      this.liveTx.delete(tx);
      this.lostTx.delete(tx);
    }
  }

  async transaction<T>(fn: (tx: TxId) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const maxAttempts = opts.maxAttempts ?? 32;
    for (let attempt = 1; ; attempt++) {
      const tx = await this.transactionStart();
      let result: T;
      try {
        result = await fn(tx);
      } catch (e) {
        await this.transactionEnd(tx, false).catch(() => {});
        if (isXenstoreError(e, 'EAGAIN') && attempt < maxAttempts) {
          await retryPause(attempt);
          continue;
        }
        throw e;
      }
      try {
        await this.transactionEnd(tx, true);
        return result;
      } catch (e) {
        if (isXenstoreError(e, 'EAGAIN') && attempt < maxAttempts) {
          this.log?.debug({ attempt }, 'xenstore transaction conflict; retrying');
          await retryPause(attempt);
          continue;
        }
        throw e;
      }
    }
  }

  getDomainPath(domid: number): Promise<string> {
    return this.request(XsOp.GET_DOMAIN_PATH, 0, [String(domid)], undefined, R_FIRST);
  }

  introduce(domid: number, mfn: number, port: number): Promise<void> {
    return this.request(XsOp.INTRODUCE, 0, [String(domid), String(mfn), String(port)], undefined, R_VOID);
  }

  release(domid: number): Promise<void> {
    return this.request(XsOp.RELEASE, 0, [String(domid)], undefined, R_VOID);
  }

  isIntroduced(domid: number): Promise<boolean> {
    return this.request(XsOp.IS_DOMAIN_INTRODUCED, 0, [String(domid)], undefined, R_BOOL);
  }

  /** XS_SET_TARGET: domid may act with target's rights (device-model stubdoms). */
  setTarget(domid: number, target: number): Promise<void> {
    return this.request(XsOp.SET_TARGET, 0, [String(domid), String(target)], undefined, R_VOID);
  }

  async resetWatches(): Promise<void> {
    await this.request(XsOp.RESET_WATCHES, 0, [''], undefined, R_VOID);
    // The daemon dropped every watch and transaction of this connection.
    this.watches.clear();
    this.forgetTransactions();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const t = this.transport;
    this.transport = null;
    t?.close();
    this.failAll('ENOTCONN', 'client closed');
    this.watches.clear();
  }

  // ---- request path ----

  private request<T>(op: number, txId: number, args: readonly string[], tail: string | undefined, result: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const p0 = args[0] ?? '';
      if (this.closed) return reject(new XenstoreError('ENOTCONN', opName(op), p0, true, 'client closed'));
      for (const a of args) {
        // A NUL inside an argument would shift the daemon's view of the arguments.
        if (a.includes('\0')) return reject(new XenstoreError('EINVAL', opName(op), p0, true, 'NUL inside an argument'));
      }
      if (txId !== 0 && this.lostTx.has(txId)) {
        // Started on a connection that is gone: the daemon no longer knows it. EAGAIN lets
        // transaction() start over; a bare id is never reused by mistake on the new connection.
        return reject(new XenstoreError('EAGAIN', opName(op), p0, true, `transaction ${txId} was lost with its connection`));
      }
      const pending: Pending = { op, reqId: this.takeReqId(), txId, path: p0, result, resolve, reject };
      if (this.transport === null || this.reconnecting) {
        this.waiting.push({ ...pending, args, tail });
        return;
      }
      this.send(pending, args, tail);
    });
  }

  private takeReqId(): number {
    const id = this.nextReqId;
    this.nextReqId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  private send(pending: Pending, args: readonly string[], tail: string | undefined): void {
    const frame = encodeRequest(pending.op, pending.reqId, pending.txId, args, tail);
    if (frame === null) {
      pending.reject(
        new XenstoreError('E2BIG', opName(pending.op), pending.path, true, `payload of ${payloadSize(args, tail)} bytes exceeds the 4096-byte xenstore limit; refused before sending`),
      );
      return;
    }
    this.inflight.push(pending);
    this.transport!.write(frame);
  }

  private onFrame(type: number, reqId: number, payload: Buffer): void {
    if (type === XsOp.WATCH_EVENT) {
      this.onWatchEvent(payload);
      return;
    }
    const p = this.inflight[this.inflightHead];
    if (p === undefined || p.reqId !== reqId) {
      this.protocolError(`reply req_id ${reqId} type ${type} does not match the oldest request (${p ? p.reqId : 'none'})`);
      return;
    }
    this.inflight[this.inflightHead++] = undefined as unknown as Pending;
    if (this.inflightHead === this.inflight.length) {
      this.inflight.length = 0;
      this.inflightHead = 0;
    } else if (this.inflightHead > 1024) {
      this.inflight.splice(0, this.inflightHead);
      this.inflightHead = 0;
    }
    if (type === XsOp.ERROR) {
      p.reject(new XenstoreError(firstString(payload).slice(0, 32), opName(p.op), p.path));
      return;
    }
    if (type !== p.op) {
      p.reject(new XenstoreError('EIO', opName(p.op), p.path, true, `reply of type ${type}`));
      return;
    }
    switch (p.result) {
      case R_VOID:
        p.resolve(undefined);
        return;
      case R_STRING:
        p.resolve(payload.toString('utf8'));
        return;
      case R_LIST:
        p.resolve(splitNul(payload));
        return;
      case R_FIRST:
        p.resolve(firstString(payload));
        return;
      case R_BOOL:
        p.resolve(firstString(payload) === 'T');
        return;
      case R_TXID: {
        const id = Number(firstString(payload));
        if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) p.reject(new XenstoreError('EIO', 'TRANSACTION_START', '', true, 'bad transaction id'));
        else p.resolve(id);
        return;
      }
      case R_PERMS:
        try {
          p.resolve(splitNul(payload).map(parsePerm));
        } catch (e) {
          p.reject(new XenstoreError('EIO', 'GET_PERMS', p.path, true, (e as Error).message));
        }
        return;
    }
  }

  private onWatchEvent(payload: Buffer): void {
    const [evPath, token] = splitNul(payload);
    const w = token === undefined ? undefined : this.watches.get(token);
    if (evPath === undefined || w === undefined) return; // unwatched meanwhile, or not ours
    const ev: WatchEvent = { path: evPath, token: token! };
    try {
      w.handler(ev);
    } catch (e) {
      this.log?.warn({ err: e, path: evPath, watch: w.path }, 'xenstore watch handler threw');
    }
  }

  // ---- loss and reconnection ----

  private protocolError(why: string): void {
    this.log?.warn({ why }, 'xenstore protocol error; dropping the connection');
    const t = this.transport;
    if (t) {
      t.close();
      this.lost(new Error(`protocol error: ${why}`));
    }
  }

  private forgetTransactions(): void {
    for (const tx of this.liveTx) this.lostTx.add(tx);
    this.liveTx.clear();
  }

  private failInflight(errno: string, detail: string): void {
    const list = this.inflight.slice(this.inflightHead);
    this.inflight.length = 0;
    this.inflightHead = 0;
    for (const p of list) {
      // A transaction's own requests are replayable by transaction(); a commit in flight is not
      // (it may or may not have been applied), so it keeps the connection error.
      const e = p.txId !== 0 && p.op !== XsOp.TRANSACTION_END ? 'EAGAIN' : errno;
      p.reject(new XenstoreError(e, opName(p.op), p.path, true, detail));
    }
  }

  private failAll(errno: string, detail: string): void {
    this.failInflight(errno, detail);
    const w = this.waiting;
    this.waiting = [];
    for (const q of w) q.reject(new XenstoreError(errno, opName(q.op), q.path, true, detail));
  }

  private lost(err?: Error): void {
    if (this.closed || this.transport === null) return;
    this.transport = null;
    if (this.reconnecting) {
      // Lost again while restoring watches: the reconnect loop notices and tries again.
      this.decoder.reset();
      this.forgetTransactions();
      this.failInflight('ECONNRESET', 'connection to xenstored lost');
      return;
    }
    this.decoder.reset();
    this.forgetTransactions();
    this.failInflight('ECONNRESET', 'connection to xenstored lost');
    this.log?.warn({ err: err?.message }, 'xenstore connection lost');
    this.emit('disconnect', err);
    if (this.opts.reconnect === false) {
      this.closed = true;
      this.failAll('ECONNRESET', 'connection to xenstored lost');
      return;
    }
    void this.reconnectLoop();
  }

  private async reconnectLoop(): Promise<void> {
    this.reconnecting = true;
    const initial = this.opts.backoffMs?.initial ?? 50;
    const max = this.opts.backoffMs?.max ?? 2000;
    let delay = initial;
    for (let attempt = 1; !this.closed; attempt++) {
      await new Promise((r) => setTimeout(r, delay * (0.75 + Math.random() * 0.5)));
      if (this.closed) return;
      try {
        const t = await this.factory(this.sink);
        if (this.closed) {
          t.close();
          return;
        }
        this.transport = t;
        const restored = await this.restoreWatches();
        this.reconnecting = false;
        this.log?.info({ attempt, watches: this.watches.size }, 'xenstore reconnected');
        const w = this.waiting;
        this.waiting = [];
        for (const q of w) {
          if (q.txId !== 0) q.reject(new XenstoreError('EAGAIN', opName(q.op), q.path, true, 'transaction lost with its connection'));
          // A watch() made while disconnected was registered by restoreWatches already.
          else if (q.op === XsOp.WATCH && restored.has(q.args[1]!)) q.resolve(undefined);
          else this.send(q, q.args, q.tail);
        }
        this.emit('reconnect');
        return;
      } catch (e) {
        if (this.transport !== null && !this.closed) {
          // Lost again while restoring watches: start over.
          this.transport.close();
          this.transport = null;
        }
        this.log?.debug({ attempt, err: (e as Error).message, delayMs: delay }, 'xenstore reconnect failed');
        delay = Math.min(delay * 2, max);
      }
    }
  }

  /** Registers every known watch on the new transport; returns the tokens it registered. */
  private async restoreWatches(): Promise<Set<string>> {
    const tokens = [...this.watches.keys()];
    const regs = tokens.map((token) => {
      const w = this.watches.get(token)!;
      return new Promise<void>((resolve, reject) => {
        const pending: Pending = { op: XsOp.WATCH, reqId: this.takeReqId(), txId: 0, path: w.path, result: R_VOID, resolve, reject };
        this.send(pending, [w.path, token], undefined);
      });
    });
    const results = await Promise.allSettled(regs);
    for (const r of results) {
      if (r.status === 'rejected') {
        const e = r.reason as XenstoreError;
        if (e.clientSide) throw e; // transport lost again
        this.log?.warn({ err: e.message }, 'xenstore watch could not be re-registered');
      }
    }
    return new Set(tokens);
  }
}

function retryPause(attempt: number): Promise<void> {
  if (attempt === 1) return Promise.resolve();
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 100)));
}
