import net from 'node:net';

/** Raw socket helpers for protocol tests: bytes in, bytes out, and when the peer closed. */

export interface RawClient {
  socket: net.Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves once at least `n` bytes arrived (or rejects after `ms`). */
  waitBytes(n: number, ms?: number): Promise<Buffer>;
  closed: Promise<void>;
  isClosed(): boolean;
}

export function rawConnect(path: string): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let buf = Buffer.alloc(0);
    let done = false;
    const waiters: (() => void)[] = [];
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (const w of waiters.splice(0)) w();
    });
    const closed = new Promise<void>((r) => socket.on('close', () => {
      done = true;
      for (const w of waiters.splice(0)) w();
      r();
    }));
    socket.on('error', () => {});
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => buf,
        closed,
        isClosed: () => done,
        waitBytes(n, ms = 10_000) {
          return new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error(`timed out waiting for ${n} bytes (have ${JSON.stringify(buf.toString())})`)), ms);
            const check = () => {
              if (buf.length >= n) {
                clearTimeout(t);
                res(buf);
              } else if (done) {
                clearTimeout(t);
                rej(new Error(`closed after ${JSON.stringify(buf.toString())}`));
              } else waiters.push(check);
            };
            check();
          });
        },
      }),
    );
    socket.once('error', reject);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
