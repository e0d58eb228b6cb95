import { closeSync, openSync, readSync } from 'node:fs';

/**
 * One /proc or /sys file read again and again through a held descriptor: a pread at offset 0
 * makes the kernel regenerate the text, ~5 µs instead of ~35 µs for open+read+close, which is
 * what keeps a 10 Hz stall poll cheap. Synchronous on purpose: procfs never blocks, and no
 * libuv thread pool is started (that would cost memory). The descriptor is reopened after any
 * error. A scripted tree (tests, bench) must rewrite its files in place, not rename over them.
 */
export class ProcFile {
  private fd: number | null = null;
  private buf: Buffer;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.min(4096, maxBytes + 1));
  }

  /** The whole file as latin1 text; throws the errno error (ENOENT, EACCES, …). Text longer than maxBytes is cut at maxBytes+1 so the parser's bound rejects it. */
  read(): string {
    try {
      this.fd ??= openSync(this.path, 'r');
      let len = 0;
      for (;;) {
        if (len === this.buf.length) {
          if (this.buf.length > this.maxBytes) break;
          const bigger = Buffer.allocUnsafe(Math.min(this.buf.length * 2, this.maxBytes + 1));
          this.buf.copy(bigger, 0, 0, len);
          this.buf = bigger;
        }
        const n = readSync(this.fd, this.buf, len, this.buf.length - len, len);
        if (n === 0) break;
        len += n;
      }
      return this.buf.toString('latin1', 0, len);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  close(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already gone; nothing to release
      }
      this.fd = null;
    }
  }
}

/** The errno name of a thrown fs error, or a short description. */
export function errnoOf(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  if (typeof e?.errno === 'string') return e.errno;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.message === 'string' ? e.message : String(err);
}
