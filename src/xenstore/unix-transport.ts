import net from 'node:net';
import type { Transport, TransportFactory, TransportSink } from './transport.js';

/**
 * Unix-socket transport (dom0). The daemons listen with a backlog of 1, so a non-blocking
 * connect() can fail with EAGAIN while other clients connect: that is retried with a short
 * growing delay for up to `eagainBudgetMs`. Other connect errors (ENOENT, ECONNREFUSED) reject.
 */
export function unixTransport(socketPath: string, opts: { eagainBudgetMs?: number } = {}): TransportFactory {
  const budget = opts.eagainBudgetMs ?? 10_000;
  return (sink) => connectWithRetry(socketPath, sink, budget);
}

async function connectWithRetry(socketPath: string, sink: TransportSink, budgetMs: number): Promise<Transport> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connectOnce(socketPath, sink);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' || Date.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, Math.min(1 + attempt * 2, 50) * (0.5 + Math.random())));
    }
  }
}

function connectOnce(socketPath: string, sink: TransportSink): Promise<Transport> {
  return new Promise((resolve, reject) => {
    // onread: replies land in one reused buffer and go straight to the sink, skipping the
    // readable-stream machinery and a Buffer allocation per read (the decoder copies leftovers).
    const readBuf = Buffer.allocUnsafe(64 * 1024);
    const sock = net.createConnection({
      path: socketPath,
      onread: {
        buffer: readBuf,
        callback: (n: number, buf: Uint8Array) => {
          sink.onData((buf as Buffer).subarray(0, n));
          return true;
        },
      },
    });
    let open = false;
    let closedByUs = false;
    let lastErr: Error | undefined;
    sock.once('connect', () => {
      open = true;
      resolve({
        describe: `unix:${socketPath}`,
        write: (frame) => {
          sock.write(frame);
        },
        close: () => {
          closedByUs = true;
          sock.destroy();
        },
      });
    });
    sock.on('error', (err) => {
      lastErr = err;
      if (!open) reject(err);
    });
    sock.on('close', () => {
      if (open && !closedByUs) sink.onClose(lastErr ?? new Error(`xenstored closed ${socketPath}`));
    });
  });
}
