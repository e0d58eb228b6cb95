/** An error as the xenstore daemon reports it: `errno` is the name the wire carries ('ENOENT'). */
export class EmbeddedXenstoreError extends Error {
  readonly errno: string;
  constructor(errno: string, what: string) {
    super(`${errno}: ${what}`);
    this.name = 'XenstoreError';
    this.errno = errno;
  }
}

export const xsErr = (errno: string, what: string) => new EmbeddedXenstoreError(errno, what);
