import { boundedLines, fail, ok, quoteLine, safeInt, type ParseResult } from './text.js';

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
const LINE = /^([a-z0-9_]{1,64}) (-?[0-9]{1,20})$/;
const WANTED = new Set(['workingset_refault_anon', 'workingset_refault_file', 'workingset_refault', 'pswpin', 'pswpout']);

/**
 * Parses /proc/vmstat. Every line must have the kernel's shape; counters we use must be safe
 * non-negative integers. A counter the kernel does not have (no swap support, older names)
 * reads as 0.
 */
export function parseVmstat(text: string): ParseResult<Vmstat> {
  const lines = boundedLines(text, VMSTAT_MAX_BYTES, 'vmstat');
  if (!lines.ok) return lines;
  const got = new Map<string, number>();
  for (const [i, line] of lines.value.entries()) {
    const m = LINE.exec(line);
    if (!m) return fail(`vmstat: line ${i + 1} is not "name value": ${quoteLine(line)}`);
    const [, name, digits] = m as unknown as [string, string, string];
    if (!WANTED.has(name)) continue;
    if (got.has(name)) return fail(`vmstat: duplicate counter ${name}`);
    const n = safeInt(digits);
    if (n === null) return fail(`vmstat: ${name} is out of range`);
    got.set(name, n);
  }
  const c = (name: string) => got.get(name) ?? 0;
  return ok({
    refaultAnon: c('workingset_refault_anon'),
    refaultFile: got.has('workingset_refault_file') ? c('workingset_refault_file') : c('workingset_refault'),
    pswpin: c('pswpin'),
    pswpout: c('pswpout'),
  });
}
