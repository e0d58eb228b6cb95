import net from 'node:net';
import type { Clock } from '../../src/clock.js';
import type { HostState } from '../../src/schemas/state.js';
import type { StateSource } from '../state/source.js';
import { Admission, type AdmissionLogger, type ManagerPort } from './admission.js';
import type { LiveReservation, ReservationBook } from './book.js';
import { listenUnix } from './listen.js';
import { serveNative } from './native.js';
import { serveQmemman } from './qmemman.js';
import { QMEMMAN_RATE, type RateRule } from './rate.js';

/**
 * The admission service: xmem's JSON-line socket and, optionally, a qmemman.sock-compatible
 * socket, both in front of one Admission (one FIFO lock, one reservation book).
 *
 * Wiring in `xmem run` (the book exists before the Manager, which reads it every pass):
 *   const book = new ReservationBook({ clock, timeoutMs: 120_000 });
 *   const manager = new Manager({ …, reservations: book.reservations, decide: withAdmissionPins(book) });
 *   const admission = await startAdmissionServer(manager, { book, clock, reserveKib, socketPath, … });
 *   await startStateServer(admission.stateSource(manager), …);   // adds reservations + refusals
 */

export { DEFAULT_ADMISSION_SOCKET } from './protocol.js';
import { DEFAULT_ADMISSION_SOCKET } from './protocol.js';

export interface AdmissionServerOptions {
  book: ReservationBook;
  clock: Clock;
  /** Xen free memory the policy never hands out (service.xenFreeReserveKib). */
  reserveKib: number;
  /** xmem's JSON-line socket; null: not served. Default /run/xmem/admission.sock. */
  socketPath?: string | null;
  /** Group allowed to use it: 0660 in that group. Default none: 0600, root only. */
  group?: string | number;
  mode?: number;
  /** qmemman.sock-compatible socket (e.g. /var/run/qubes/qmemman.sock); null: not served. */
  qmemmanSocketPath?: string | null;
  qmemmanGroup?: string | number;
  /** qmemmand creates its socket world-connectable (umask 0); xmem defaults to 0600 here too. */
  qmemmanMode?: number;
  /** Default hold of a reservation (and longest hold of a qmemman.sock connection); default: the book's. */
  holdTimeoutMs?: number;
  maxHoldTimeoutMs?: number;
  marginKib?: number;
  rule?: RateRule;
  pollMs?: number;
  squeezeMaxMs?: number;
  /** Connections beyond this (per socket) are closed at once (default 64). */
  maxConnections?: number;
  logger?: AdmissionLogger;
}

export interface AdmissionServer {
  admission: Admission;
  book: ReservationBook;
  socketPath: string | null;
  qmemmanSocketPath: string | null;
  /** The manager's state with admission's live reservations and recent refusals filled in. */
  decorate(state: HostState): HostState;
  /** A StateSource for TOP's server: the manager's, decorated. */
  stateSource(source: StateSource): StateSource;
  close(): Promise<void>;
}

export async function startAdmissionServer(manager: ManagerPort, opts: AdmissionServerOptions): Promise<AdmissionServer> {
  const { book, clock, logger } = opts;
  book.attach(() => manager.lastSnapshot());
  const rule = opts.rule ?? QMEMMAN_RATE;
  const pollMs = opts.pollMs ?? 100;
  const holdTimeoutMs = opts.holdTimeoutMs ?? book.timeoutMs;
  const admission = new Admission(manager, book, {
    clock, logger, reserveKib: opts.reserveKib, rule, pollMs,
    ...(opts.marginKib !== undefined ? { marginKib: opts.marginKib } : {}),
    ...(opts.squeezeMaxMs !== undefined ? { squeezeMaxMs: opts.squeezeMaxMs } : {}),
  });
  // Every change (new, held, released, expired, refused) deserves a pass: the policy re-plans
  // around reserved memory, and the state stream shows it.
  const onChange = () => manager.requestPass();
  book.on('change', onChange);
  const onExpire = (r: LiveReservation) =>
    logger?.warn({ id: r.id, vm: r.forName, kib: r.kib, heldMs: Math.round(clock.now() - r.sinceMs) }, 'reservation expired');
  book.on('expire', onExpire);

  const closers: (() => Promise<void>)[] = [];
  const sockets = new Set<net.Socket>();
  // Local root tools and qubesd: a bound keeps a runaway script from costing the service memory.
  const maxConnections = opts.maxConnections ?? 64;
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };

  const socketPath = opts.socketPath === undefined ? DEFAULT_ADMISSION_SOCKET : opts.socketPath;
  const qmemmanPath = opts.qmemmanSocketPath ?? null;
  try {
    if (socketPath) {
      const server = net.createServer((s) => {
        track(s);
        serveNative(s, admission, { clock, logger, defaultTimeoutMs: holdTimeoutMs, maxTimeoutMs: opts.maxHoldTimeoutMs ?? 3600_000 });
      });
      server.maxConnections = maxConnections;
      closers.push(await listenUnix(server, { socketPath, group: opts.group, mode: opts.mode }));
    }
    if (qmemmanPath) {
      const server = net.createServer((s) => {
        track(s);
        serveQmemman(s, admission, manager, {
          clock, logger, holdMaxMs: holdTimeoutMs, rule, pollMs,
        });
      });
      server.maxConnections = maxConnections;
      closers.push(await listenUnix(server, { socketPath: qmemmanPath, group: opts.qmemmanGroup, mode: opts.qmemmanMode }));
    }
  } catch (err) {
    for (const c of closers) await c().catch(() => {});
    book.off('change', onChange);
    book.off('expire', onExpire);
    throw err;
  }
  logger?.info({ socket: socketPath, qmemmanSocket: qmemmanPath }, 'admission listening');

  const decorate = (state: HostState): HostState => decorateState(state, book, clock);
  return {
    admission,
    book,
    socketPath,
    qmemmanSocketPath: qmemmanPath,
    decorate,
    stateSource(source: StateSource): StateSource {
      // The manager's changes and decisions, plus the book's: a reservation booked or answered
      // changes the state too, and refusals are the book's alone.
      return {
        current: () => decorate(source.current()),
        on(event, listener) {
          if (event === 'refusal') book.on('refusal', listener);
          else source.on(event, listener);
          if (event === 'change') book.on('change', listener);
        },
        off(event, listener) {
          if (event === 'refusal') book.off('refusal', listener);
          else source.off?.(event, listener);
          if (event === 'change') book.off('change', listener);
        },
      };
    },
    async close() {
      book.off('change', onChange);
      book.off('expire', onExpire);
      for (const s of sockets) s.destroy();
      for (const c of closers) await c().catch(() => {});
      book.clear();
    },
  };
}

/** Fills in what only admission knows: squeezing vs held, and recent refusals. Pure. */
export function decorateState(state: HostState, book: ReservationBook, clock: Clock, wallNow = Date.now()): HostState {
  const mono = clock.now();
  const live = book.list();
  return {
    ...state,
    host: { ...state.host, reservedKib: live.reduce((s, r) => s + book.owedKib(r), 0) },
    reservations: live.map((r) => ({
      id: r.id,
      forName: r.forName,
      kib: r.kib,
      sinceMs: Math.round(wallNow - (mono - r.sinceMs)),
      state: r.state,
    })),
    refusals: book.refusals(),
  };
}
