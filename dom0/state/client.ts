import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { HostStateSchema, STATE_VERSION, type HostState } from '../../src/schemas/state.js';
import { STATE_WS_PATH } from './paths.js';

/** Where to reach the state server: its unix socket, or a configured loopback TCP port. */
export type StateEndpoint = { socketPath: string } | { host: string; port: number };

export type StateErrorKind = 'unreachable' | 'version' | 'invalid';

export class StateStreamError extends Error {
  constructor(
    readonly kind: StateErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'StateStreamError';
  }
}

/** A whole state with 200 VMs is ~60 KiB; anything near this is not from our server. */
const MAX_MESSAGE_BYTES = 8 << 20;

export function endpointUrl(ep: StateEndpoint): string {
  return 'socketPath' in ep ? `ws+unix://${ep.socketPath}:${STATE_WS_PATH}` : `ws://${ep.host}:${ep.port}${STATE_WS_PATH}`;
}

export function describeEndpoint(ep: StateEndpoint): string {
  return 'socketPath' in ep ? ep.socketPath : `${ep.host}:${ep.port}`;
}

/**
 * Checks one message from the server: the version first (so a newer server gets a clear
 * "upgrade" message rather than a schema dump), then the full schema.
 */
export function parseStateMessage(text: string): HostState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StateStreamError('invalid', 'state server sent a message that is not JSON');
  }
  const v = typeof raw === 'object' && raw !== null ? (raw as { v?: unknown }).v : undefined;
  if (v !== STATE_VERSION) {
    throw new StateStreamError(
      'version',
      `state server speaks stream version ${JSON.stringify(v)}; this xmem understands version ${STATE_VERSION} (upgrade or restart so both match)`,
    );
  }
  const parsed = HostStateSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new StateStreamError('invalid', `state server sent an invalid snapshot (${first?.path.join('.') || '<root>'}: ${first?.message ?? '?'})`);
  }
  return parsed.data;
}

export interface StateClientOptions {
  /** Reconnect after a disconnect (default true). A version mismatch always stops. */
  reconnect?: boolean;
  /** Backoff bounds in ms (default 200 → 2000, doubling). */
  minDelayMs?: number;
  maxDelayMs?: number;
}

export interface StateClientEvents {
  state: [HostState];
  open: [];
  /** The connection is gone (or never came); `retryInMs` is null when it will not retry. */
  disconnect: [{ reason: string; retryInMs: number | null }];
  error: [StateStreamError];
}

/**
 * A live subscription to the state stream that keeps itself connected. Every message is
 * validated; a bad one is reported and dropped (the last good state stays on screen).
 */
export class StateClient extends EventEmitter<StateClientEvents> {
  private ws: WebSocket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private delay: number;
  private stopped = false;
  private readonly opts: Required<StateClientOptions>;

  constructor(
    readonly endpoint: StateEndpoint,
    opts: StateClientOptions = {},
  ) {
    super();
    this.opts = { reconnect: true, minDelayMs: 200, maxDelayMs: 2000, ...opts };
    this.delay = this.opts.minDelayMs;
  }

  start(): this {
    this.stopped = false;
    this.open();
    return this;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ws?.terminate();
    this.ws = null;
  }

  // An EventEmitter throws on an unheard 'error'; a viewer that only wants states must not crash.
  private report(e: StateStreamError): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  private open(): void {
    const ws = new WebSocket(endpointUrl(this.endpoint), { maxPayload: MAX_MESSAGE_BYTES, handshakeTimeout: 5000 });
    this.ws = ws;
    let failure: string | null = null;
    let giveUp = false;
    ws.on('open', () => {
      this.delay = this.opts.minDelayMs;
      this.emit('open');
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return this.report(new StateStreamError('invalid', 'state server sent a binary frame'));
      try {
        this.emit('state', parseStateMessage(data.toString()));
      } catch (err) {
        const e = err as StateStreamError;
        if (e.kind === 'version') {
          giveUp = true;
          failure = e.message;
          ws.close();
        }
        this.report(e);
      }
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      failure = explainConnectError(err, this.endpoint);
    });
    ws.on('close', () => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      const retry = this.opts.reconnect && !giveUp;
      const retryInMs = retry ? this.delay : null;
      this.emit('disconnect', { reason: failure ?? 'connection closed by the service', retryInMs });
      if (retry) {
        this.timer = setTimeout(() => {
          this.timer = null;
          if (!this.stopped) this.open();
        }, this.delay);
        this.delay = Math.min(this.delay * 2, this.opts.maxDelayMs);
      }
    });
  }
}

export function explainConnectError(err: NodeJS.ErrnoException, ep: StateEndpoint): string {
  const where = describeEndpoint(ep);
  switch (err.code) {
    case 'ENOENT':
      return `the xmem service is not running (no state socket at ${where})`;
    case 'ECONNREFUSED':
      return `the xmem service is not running (nothing listens on ${where})`;
    case 'EACCES':
      return `permission denied on ${where} (the state socket is root's; try sudo)`;
    default:
      return `cannot reach the xmem service at ${where}: ${err.message}`;
  }
}

/** One snapshot, for `xmem status` and `xmem top --once`. */
export function fetchState(endpoint: StateEndpoint, timeoutMs = 5000): Promise<HostState> {
  return new Promise((resolve, reject) => {
    const client = new StateClient(endpoint, { reconnect: false });
    const done = (fn: () => void): void => {
      clearTimeout(timer);
      client.stop();
      fn();
    };
    const timer = setTimeout(
      () => done(() => reject(new StateStreamError('unreachable', `no snapshot from ${describeEndpoint(endpoint)} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    client.on('state', (s) => done(() => resolve(s)));
    client.on('error', (e) => done(() => reject(e)));
    client.on('disconnect', ({ reason }) => done(() => reject(new StateStreamError('unreachable', reason))));
    client.start();
  });
}
