import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, chown, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { DecisionLog, HostState } from '../../src/schemas/state.js';
import type { StateSource } from './source.js';
import { StateMetrics } from './metrics.js';
import { clearStaleSocket } from './socket-file.js';
import { resolveGid } from '../admission/listen.js';
import { METRICS_PATH, STATE_WS_PATH } from './paths.js';

export interface StateServerOptions {
  /** Unix socket for the WebSocket stream (`/state`) and Prometheus (`/metrics`). */
  socketPath: string;
  /** File mode of the socket; 0600 by default (root's tools only), 0660 with a group. */
  mode?: number;
  /** Group that may watch (name or gid), e.g. Qubes' `qubes` so the dom0 user runs `xmem top` without sudo. */
  group?: string | number;
  /** Also listen on 127.0.0.1:<port>, only when the admin configured it (0 = any free port, for tests). */
  tcpPort?: number;
  /** Concurrent WebSocket clients beyond this get 503 (default 64). */
  maxClients?: number;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface StateServer {
  /** The loopback TCP address, when tcpPort was configured. */
  readonly tcpAddress: AddressInfo | null;
  clients(): number;
  close(): Promise<void>;
}

/** A slow client skips intermediate snapshots (each one is complete) instead of growing a queue. */
const MAX_CLIENT_BACKLOG_BYTES = 1 << 20;
/** Viewers are people and a scraper or two; a bound keeps a runaway script from costing the service memory. */
const DEFAULT_MAX_CLIENTS = 64;

/**
 * Serves the manager's state: a snapshot on connect, then one after every change, as JSON text
 * frames that are HostState objects (versioned by `v`); and the same data as Prometheus text.
 */
export async function startStateServer(source: StateSource, opts: StateServerOptions): Promise<StateServer> {
  const metrics = new StateMetrics();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 /* clients send nothing */ });
  const log = opts.logger;
  const pull = stateReader(source, log);

  // The state is built only when someone looks: once per change while viewers are connected
  // (after the pass's own I/O: setImmediate), at a connect, at a scrape.
  let flushQueued = false;
  const flush = (): void => {
    flushQueued = false;
    if (wss.clients.size === 0) return;
    const state = pull();
    if (!state) return;
    const text = JSON.stringify(state);
    for (const ws of wss.clients) send(ws, text);
  };
  const onChange = (): void => {
    if (flushQueued || wss.clients.size === 0) return;
    flushQueued = true;
    setImmediate(flush);
  };
  const onDecision = (d: DecisionLog): void => metrics.countDecision(d);
  const onRefusal = (): void => metrics.countRefusal();
  source.on('change', onChange);
  source.on('decision', onDecision);
  source.on('refusal', onRefusal);

  wss.on('connection', (ws) => {
    ws.on('error', (err) => log?.warn({ err: err.message }, 'state client error'));
    const state = pull();
    if (state) send(ws, JSON.stringify(state));
  });

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url?.split('?')[0];
    if (req.method === 'GET' && url === METRICS_PATH) {
      metrics.text(pull()).then(
        (body) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${String(err)}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`xmem state server: GET ${METRICS_PATH}, or a WebSocket on ${STATE_WS_PATH}\n`);
  };
  const onUpgrade = (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer): void => {
    if (req.url?.split('?')[0] !== STATE_WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    if (wss.clients.size >= (opts.maxClients ?? DEFAULT_MAX_CLIENTS)) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      log?.warn({ clients: wss.clients.size }, 'state client refused: too many clients');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };

  const servers: http.Server[] = [];
  const listenOn = async (target: string | { port: number; host: string }): Promise<http.Server> => {
    const srv = http.createServer(onRequest);
    srv.on('upgrade', onUpgrade);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      if (typeof target === 'string') srv.listen(target, resolve);
      else srv.listen(target.port, target.host, resolve);
    });
    servers.push(srv);
    return srv;
  };

  try {
    // /run is a tmpfs: the directory is gone after a reboot unless systemd's RuntimeDirectory made it.
    await mkdir(path.dirname(opts.socketPath), { recursive: true, mode: 0o755 });
    await clearStaleSocket(opts.socketPath);
    await listenOn(opts.socketPath);
    // The socket exists with the umask's mode for a moment; the stream is read-only and the
    // directory (/run/xmem) is root's, so chmod right after listen is enough.
    const gid = opts.group !== undefined ? await resolveGid(opts.group) : null;
    if (gid !== null) await chown(opts.socketPath, -1, gid);
    await chmod(opts.socketPath, opts.mode ?? (gid !== null ? 0o660 : 0o600));
  } catch (err) {
    await closeAll();
    throw new Error(`state server: cannot listen on ${opts.socketPath}: ${(err as Error).message}`);
  }
  let tcpAddress: AddressInfo | null = null;
  if (opts.tcpPort !== undefined) {
    try {
      const srv = await listenOn({ port: opts.tcpPort, host: '127.0.0.1' });
      tcpAddress = srv.address() as AddressInfo;
    } catch (err) {
      await closeAll();
      throw new Error(`state server: cannot listen on 127.0.0.1:${opts.tcpPort}: ${(err as Error).message}`);
    }
  }
  log?.info({ socketPath: opts.socketPath, tcp: tcpAddress?.port ?? null }, 'state server listening');

  let closed = false;
  async function closeAll(): Promise<void> {
    source.off?.('change', onChange);
    source.off?.('decision', onDecision);
    source.off?.('refusal', onRefusal);
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await Promise.all(
      servers.map(
        (srv) =>
          new Promise<void>((resolve) => {
            srv.closeAllConnections();
            srv.close(() => resolve());
          }),
      ),
    );
  }

  return {
    tcpAddress,
    clients: () => wss.clients.size,
    async close() {
      if (closed) return;
      closed = true;
      await closeAll();
      await unlink(opts.socketPath).catch(() => undefined);
    },
  };
}

function send(ws: WebSocket, text: string): void {
  if (ws.readyState !== ws.OPEN || ws.bufferedAmount > MAX_CLIENT_BACKLOG_BYTES) return;
  ws.send(text);
}

/**
 * Pulls the source's state. A source that cannot build one (the manager before its first pass,
 * or a bug) may fail at every pull, up to once per pass while a viewer watches: it is logged
 * once per distinct error, and once when it answers again.
 */
function stateReader(source: StateSource, log: StateServerOptions['logger']): () => HostState | null {
  let failing: string | null = null;
  return () => {
    try {
      const state = source.current();
      if (failing !== null) log?.info({ was: failing }, 'state source answers again');
      failing = null;
      return state;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message !== failing) log?.warn({ err: message }, 'state source has no current state; viewers get the next one');
      failing = message;
      return null;
    }
  };
}
