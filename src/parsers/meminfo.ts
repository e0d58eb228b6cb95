import { boundedLines, fail, ok, quoteLine, safeInt, type ParseResult } from './text.js';

/** /proc/meminfo is ~1.5 KiB on current kernels; anything far beyond that is not meminfo. */
export const MEMINFO_MAX_BYTES = 16 * 1024;

/** The fields xmem uses, in KiB. */
export interface Meminfo {
  memTotal: number;
  memFree: number;
  /** MemAvailable; on kernels before 3.14 (no such line) estimated as MemFree + Buffers + Cached. */
  memAvailable: number;
  memAvailableEstimated: boolean;
  buffers: number;
  cached: number;
  activeFile: number;
  inactiveFile: number;
  shmem: number;
  sReclaimable: number;
  sUnreclaim: number;
  anonPages: number;
  mlocked: number;
  swapTotal: number;
  swapFree: number;
  committedAS: number;
}

/** Lines without which the numbers are meaningless (meminfo-writer's own set). */
const REQUIRED = ['MemTotal', 'MemFree', 'Buffers', 'Cached'] as const;

// "Key:   123 kB" or "HugePages_Total:   0" (counts carry no unit). Keys may hold "(anon)".
const LINE = /^([A-Za-z0-9_()]{1,40}):[ \t]+([0-9]{1,20})( kB)?[ \t]*$/;

/**
 * Parses /proc/meminfo text. Every line must have the kernel's shape; a field we use must be a
 * safe integer in kB. Missing optional fields (Mlocked without CONFIG_MMU, …) read as 0.
 */
export function parseMeminfo(text: string): ParseResult<Meminfo> {
  const lines = boundedLines(text, MEMINFO_MAX_BYTES, 'meminfo');
  if (!lines.ok) return lines;
  const kib = new Map<string, string>();
  for (const [i, line] of lines.value.entries()) {
    const m = LINE.exec(line);
    if (!m) return fail(`meminfo: line ${i + 1} is not "Key: value [kB]": ${quoteLine(line)}`);
    const [, key, digits, unit] = m as unknown as [string, string, string, string | undefined];
    if (kib.has(key)) return fail(`meminfo: duplicate field ${key}`);
    // Unit-less lines are page counts (HugePages_*); keep them out of the KiB map.
    if (unit) kib.set(key, digits);
  }
  for (const key of REQUIRED) {
    if (!kib.has(key)) return fail(`meminfo: missing ${key}`);
  }
  let bad: string | null = null;
  const get = (key: string): number => {
    const digits = kib.get(key);
    if (digits === undefined) return 0;
    const n = safeInt(digits);
    if (n === null) {
      bad ??= key;
      return 0;
    }
    return n;
  };
  const memFree = get('MemFree');
  const buffers = get('Buffers');
  const cached = get('Cached');
  const hasAvailable = kib.has('MemAvailable');
  const value: Meminfo = {
    memTotal: get('MemTotal'),
    memFree,
    memAvailable: hasAvailable ? get('MemAvailable') : memFree + buffers + cached,
    memAvailableEstimated: !hasAvailable,
    buffers,
    cached,
    activeFile: get('Active(file)'),
    inactiveFile: get('Inactive(file)'),
    shmem: get('Shmem'),
    sReclaimable: get('SReclaimable'),
    sUnreclaim: get('SUnreclaim'),
    anonPages: get('AnonPages'),
    mlocked: get('Mlocked'),
    swapTotal: get('SwapTotal'),
    swapFree: get('SwapFree'),
    committedAS: get('Committed_AS'),
  };
  if (bad !== null) return fail(`meminfo: ${bad as string} is out of range`);
  if (value.memTotal === 0) return fail('meminfo: MemTotal is 0');
  if (value.memFree > value.memTotal) return fail('meminfo: MemFree exceeds MemTotal');
  if (value.swapFree > value.swapTotal) return fail('meminfo: SwapFree exceeds SwapTotal');
  return ok(value);
}
