import { checkBounds, fail, ok, quoteLine, safeInt, scanLines, type ParseResult } from './text.js';

/** /proc/vmstat is ~4 KiB on a small machine and grows with NUMA nodes; 128 KiB is generous. */
export const VMSTAT_MAX_BYTES = 128 * 1024;

/** Cumulative counters xmem uses (pages / events since boot). */
export interface Vmstat {
  /** workingset_refault_anon (Linux ≥ 5.9; 0 before, when anon pages had no shadow entries). */
  refaultAnon: number;
  /** workingset_refault_file, or the older single workingset_refault (file only, < 5.9). */
  refaultFile: number;
  pswpin: number;
  pswpout: number;
}

// "name value"; a few gauges can print negative on some kernels, accepted but never used.
const LINE = /([a-z0-9_]{1,64}) (-?[0-9]{1,20})/y;
const WANTED = new Set(['workingset_refault_anon', 'workingset_refault_file', 'workingset_refault', 'pswpin', 'pswpout']);

/**
 * Parses /proc/vmstat. Every line must have the kernel's shape; counters we use must be safe
 * non-negative integers. A counter the kernel does not have (no swap support, older names)
 * reads as 0.
 */
export function parseVmstat(text: string): ParseResult<Vmstat> {
  const bounded = checkBounds(text, VMSTAT_MAX_BYTES, 'vmstat');
  if (!bounded.ok) return bounded;
  const got = new Map<string, number>();
  const bad = scanLines(text, LINE, (m) => {
    const name = m[1]!;
    if (!WANTED.has(name)) return null;
    if (got.has(name)) return `duplicate counter ${name}`;
    const n = safeInt(m[2]!);
    if (n === null) return `${name} is out of range`;
    got.set(name, n);
    return null;
  });
  if (bad) return fail(bad.why ? `vmstat: ${bad.why}` : `vmstat: line ${bad.n} is not "name value": ${quoteLine(bad.line)}`);
  const c = (name: string) => got.get(name) ?? 0;
  return ok({
    refaultAnon: c('workingset_refault_anon'),
    refaultFile: got.has('workingset_refault_file') ? c('workingset_refault_file') : c('workingset_refault'),
    pswpin: c('pswpin'),
    pswpout: c('pswpout'),
  });
}
