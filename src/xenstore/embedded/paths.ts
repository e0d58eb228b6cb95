/**
 * Path rules of the C xenstored (xenstored_core.c: is_valid_nodename, canonicalize): absolute
 * paths start with '/', relative ones resolve under the connection's /local/domain/<domid>;
 * '@' names are special watch paths only.
 */

/** XENSTORE_ABS_PATH_MAX in xs_wire.h. */
export const ABS_PATH_MAX = 3072;
const VALID = /^\/[A-Za-z0-9\-/_@]*$/;

export function homeOf(domid: number): string {
  return `/local/domain/${domid}`;
}

/** Canonical absolute path, or null when the path is invalid (→ EINVAL). */
export function canonical(path: string, domid: number): string | null {
  if (path.length === 0) return null;
  const abs = path.startsWith('/') ? path : `${homeOf(domid)}/${path}`;
  if (abs.length > ABS_PATH_MAX || !VALID.test(abs)) return null;
  if (abs !== '/' && (abs.endsWith('/') || abs.includes('//'))) return null;
  return abs;
}

/** Special watch paths (@introduceDomain, @releaseDomain): exact names, no children. */
export function isSpecial(path: string): boolean {
  return /^@[A-Za-z0-9\-_]+$/.test(path);
}

export function parentOf(abs: string): string | null {
  if (abs === '/') return null;
  const i = abs.lastIndexOf('/');
  return i === 0 ? '/' : abs.slice(0, i);
}

export function baseName(abs: string): string {
  return abs.slice(abs.lastIndexOf('/') + 1);
}

/** True when `child` is `anc` or lies below it. */
export function isAtOrBelow(child: string, anc: string): boolean {
  if (anc === '/') return child.startsWith('/');
  return child === anc || child.startsWith(anc + '/');
}

/** How a client that registered `registered` (maybe relative) should see absolute `abs`. */
export function relativise(abs: string, registeredRelative: boolean, domid: number): string {
  if (!registeredRelative) return abs;
  const home = homeOf(domid) + '/';
  return abs.startsWith(home) ? abs.slice(home.length) : abs;
}
