import type { XsPerm } from './types.js';

/** Permission strings: a letter (n none, r read, w write, b both) and a decimal domid. */
const PERM_RE = /^([nrwb])(\d{1,5})$/;

export function parsePerm(s: string): XsPerm {
  const m = PERM_RE.exec(s);
  if (!m) throw new Error(`bad xenstore permission string ${JSON.stringify(s)}`);
  return { access: m[1] as XsPerm['access'], domid: Number(m[2]) };
}

export function formatPerm(p: XsPerm): string {
  if (!Number.isInteger(p.domid) || p.domid < 0 || p.domid > 0xffff) throw new Error(`bad domid ${p.domid} in permission`);
  if (p.access !== 'n' && p.access !== 'r' && p.access !== 'w' && p.access !== 'b') {
    throw new Error(`bad access ${JSON.stringify(p.access)} in permission`);
  }
  return `${p.access}${p.domid}`;
}
