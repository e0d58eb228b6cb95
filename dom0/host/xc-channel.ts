import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { z } from 'zod';

/**
 * The line to `xmem-xc` (dom0/native/xmem-xc.c): one long-lived helper process, one request
 * line in, one JSON line out, strictly in order. It replaces forking `xl` for every pass, which
 * costs seconds in a slow (emulated or busy) dom0. The helper is restarted on the next request
 * if it dies; a request it does not answer in time fails and the helper is killed.
 */

const Failure = z.object({ ok: z.literal(false), errno: z.string().max(32), error: z.string().max(512) });
export const XcInfoSchema = z.union([z.object({ ok: z.literal(true), totalKib: z.number().int().min(0), freeKib: z.number().int().min(0) }), Failure]);
export const XcListSchema = z.union([
  z.object({
    ok: z.literal(true),
    domains: z.array(z.object({ domid: z.number().int().min(0).max(0x7fef), totKib: z.number().int().min(0), maxKib: z.number().min(0), flags: z.number().int().min(0) })).max(1024),
  }),
  Failure,
]);
export const XcAckSchema = z.union([z.object({ ok: z.literal(true) }), Failure]);

export class XcError extends Error {
  constructor(
    message: string,
    readonly errno: string,
  ) {
    super(message);
    this.name = 'XcError';
  }
}

interface Pending {
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface XcChannelOptions {
  helperPath: string;
  /** A request not answered within this kills the helper (it is restarted next time). */
  timeoutMs?: number;
}

export class XcChannel {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly pending: Pending[] = [];
  private buffered = '';
  private stderrTail = '';
  private readonly timeoutMs: number;
  /** Helper processes started, for logs and tests. */
  starts = 0;

  constructor(private readonly opts: XcChannelOptions) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** Sends one request line and parses its answer with `schema`; a Xen error throws XcError. */
  async call<T extends { ok: true }>(request: string, schema: z.ZodType<T | z.infer<typeof Failure>>): Promise<T> {
    const line = await this.send(request);
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new XcError(`xmem-xc answered ${JSON.stringify(line.slice(0, 120))} to ${request}`, 'EPROTO');
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new XcError(`xmem-xc answer to ${request} does not fit: ${parsed.error.issues[0]?.message}`, 'EPROTO');
    const v = parsed.data;
    if (v.ok === false) throw new XcError(`xmem-xc ${request}: ${v.error}`, v.errno);
    return v as T;
  }

  close(): void {
    const c = this.child;
    this.child = null;
    if (c) {
      c.stdin.end();
      c.kill('SIGTERM');
    }
    this.failAll(new XcError('xmem-xc closed', 'ECONNRESET'));
  }

  private send(request: string): Promise<string> {
    const child = this.child ?? this.spawn();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Out of step from here on: kill it, and every request still waiting fails with it.
        this.kill(child, new XcError(`xmem-xc did not answer ${request} within ${this.timeoutMs} ms`, 'ETIMEDOUT'));
      }, this.timeoutMs);
      this.pending.push({ resolve, reject, timer });
      child.stdin.write(request + '\n');
    });
  }

  private spawn(): ChildProcessWithoutNullStreams {
    const child = spawn(this.opts.helperPath, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.starts++;
    this.buffered = '';
    this.stderrTail = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let nl; (nl = this.buffered.indexOf('\n')) >= 0; ) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const p = this.pending.shift();
        if (!p) continue; // an answer nobody waits for (after a timeout): ignored
        clearTimeout(p.timer);
        p.resolve(line);
      }
      if (this.buffered.length > 1 << 20) this.kill(child, new XcError('xmem-xc sent a line over 1 MiB', 'EPROTO'));
    });
    child.stderr.on('data', (chunk: string) => (this.stderrTail = (this.stderrTail + chunk).slice(-400)));
    child.stdin.on('error', () => {}); // EPIPE: the exit handler reports it
    child.on('error', (err) => this.kill(child, new XcError(`cannot run ${this.opts.helperPath}: ${err.message}`, (err as NodeJS.ErrnoException).code ?? 'EIO')));
    // 'close', not 'exit': only then has the helper's last stderr line been read.
    child.on('close', (code, signal) => {
      const why = this.stderrTail.trim().split('\n').pop() ?? '';
      this.kill(child, new XcError(`xmem-xc exited (${signal ?? `code ${code}`})${why ? `: ${why}` : ''}`, 'ECONNRESET'));
    });
    return child;
  }

  private kill(child: ChildProcessWithoutNullStreams, err: Error): void {
    // A helper already given up on (its exit event comes later) must not fail its successor's requests.
    if (this.child !== child) return;
    this.child = null;
    child.kill('SIGKILL');
    this.failAll(err);
  }

  private failAll(err: Error): void {
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
