import net from 'node:net';
import type { z } from 'zod';
import { DEFAULT_ADMISSION_SOCKET, type AdmissionRequest } from './protocol.js';

/**
 * A client of the admission socket: sends one request line and reads one reply line, validated
 * with the reply schema. The connection stays open (`conn.socket`) for a caller that holds a
 * reservation for as long as it lives (`xmem reserve --hold`).
 */

export function admissionSocketPath(explicit?: string): string {
  return explicit ?? process.env.XMEM_ADMISSION_SOCKET ?? DEFAULT_ADMISSION_SOCKET;
}

export class AdmissionConnection {
  private buf = '';
  private waiters: ((line: string | Error) => void)[] = [];
  private ended: Error | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiters.shift()?.(line);
      }
    });
    const fail = (err: Error) => {
      this.ended = err;
      for (const w of this.waiters.splice(0)) w(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the xmem service closed the connection')));
  }

  static connect(socketPath: string): Promise<AdmissionConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new AdmissionConnection(s));
      });
      s.once('error', reject);
    });
  }

  async request<S extends z.ZodType>(req: AdmissionRequest, schema: S): Promise<z.infer<S>> {
    if (this.ended) throw this.ended;
    const line = new Promise<string | Error>((resolve) => this.waiters.push(resolve));
    this.socket.write(JSON.stringify(req) + '\n');
    const got = await line;
    if (got instanceof Error) throw got;
    let json: unknown;
    try {
      json = JSON.parse(got);
    } catch {
      throw new Error(`the xmem service sent a reply that is not JSON: ${got.slice(0, 200)}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new Error(`unexpected reply from the xmem service: ${parsed.error.message}`);
    return parsed.data;
  }

  close(): void {
    this.socket.end();
  }
}

/** A human explanation of a failed connect (the usual causes: service down, not root). */
export function connectError(err: unknown, socketPath: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED') return `cannot reach the xmem service at ${socketPath} (${code}): is \`xmem run\` running with admission enabled?`;
  if (code === 'EACCES') return `permission denied on ${socketPath}: run as root or as a member of the admission socket's group`;
  return `cannot connect to ${socketPath}: ${err instanceof Error ? err.message : String(err)}`;
}
