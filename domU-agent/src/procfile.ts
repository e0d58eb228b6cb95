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

  private prev: Buffer | null = null;
  private prevLen = -1;

  /** The whole file as latin1 text; throws the errno error (ENOENT, EACCES, …). Text longer than maxBytes is cut at maxBytes+1 so the parser's bound rejects it. */
  read(): string {
    const len = this.fill();
    return this.buf.toString('latin1', 0, len);
  }

  /**
   * Like read(), but null when the bytes are the same as at the last call: the 10 Hz stall poll
   * then costs one pread and a memcmp, no string and no parse (PSI text changes every 2 s at most).
   */
  readIfChanged(): string | null {
    const len = this.fill();
    if (this.prev && len === this.prevLen && this.buf.compare(this.prev, 0, len, 0, len) === 0) return null;
    if (!this.prev || this.prev.length < len) this.prev = Buffer.allocUnsafe(this.buf.length);
    this.buf.copy(this.prev, 0, 0, len);
    this.prevLen = len;
    return this.buf.toString('latin1', 0, len);
  }

  private fill(): number {
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
        const want = this.buf.length - len;
        const n = readSync(this.fd, this.buf, len, want, len);
        len += n;
        // procfs/seq_file and regular files only return short at end of file: skip the extra read.
        if (n < want) break;
      }
      return len;
    } catch (err) {
      this.close();
      this.prevLen = -1;
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
