/**
 * Typed xenstore errors. `errno` is the name the daemon sends in an XS_ERROR reply ('ENOENT',
 * 'EACCES', 'EAGAIN', ...) or one the client raises itself before or instead of the wire
 * (`clientSide` = true): E2BIG (payload over 4096), EINVAL (NUL inside an argument),
 * ECONNRESET (connection lost with the request in flight), ENOTCONN (client closed).
 */

/** The errno names xenstored sends, in xs_wire.h's xsd_errors[] order. */
export const XS_ERRNOS = [
  'EINVAL', 'EACCES', 'EEXIST', 'EISDIR', 'ENOENT', 'ENOMEM', 'ENOSPC', 'EIO',
  'ENOTEMPTY', 'ENOSYS', 'EROFS', 'EBUSY', 'EAGAIN', 'EISCONN', 'E2BIG', 'EPERM',
] as const;

export class XenstoreError extends Error {
  override readonly name = 'XenstoreError';
  constructor(
    readonly errno: string,
    /** Operation name, e.g. 'WRITE'. */
    readonly op: string,
    /** First argument of the request (usually the path), for the log line. */
    readonly path: string,
    readonly clientSide = false,
    detail?: string,
  ) {
    super(`xenstore ${op}${path ? ` ${path}` : ''}: ${errno}${detail ? ` (${detail})` : ''}`);
  }
}

export const isXenstoreError = (e: unknown, errno?: string): e is XenstoreError =>
  e instanceof XenstoreError && (errno === undefined || e.errno === errno);
