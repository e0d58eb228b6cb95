import { checkBounds, fail, ok, quoteLine, safeInt, scanLines, type ParseResult } from './text.js';

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

/** The lines xmem reads; every other line is checked for shape and skipped. */
const WANTED = new Set([
  'MemTotal', 'MemFree', 'MemAvailable', 'Buffers', 'Cached', 'Active(file)', 'Inactive(file)', 'Shmem',
  'SReclaimable', 'SUnreclaim', 'AnonPages', 'Mlocked', 'SwapTotal', 'SwapFree', 'Committed_AS',
]);

// "Key:   123 kB" or "HugePages_Total:   0" (counts carry no unit). Keys may hold "(anon)".
const LINE = /([A-Za-z0-9_()]{1,40}):[ \t]+([0-9]{1,20})( kB)?[ \t]*/y;

/**
 * Parses /proc/meminfo text. Every line must have the kernel's shape; a field we use must be a
 * safe integer in kB. Missing optional fields (Mlocked without CONFIG_MMU, …) read as 0.
 */
export function parseMeminfo(text: string): ParseResult<Meminfo> {
  const bounded = checkBounds(text, MEMINFO_MAX_BYTES, 'meminfo');
  if (!bounded.ok) return bounded;
  const kib = new Map<string, number | null>();
  const bad = scanLines(text, LINE, (m) => {
    const key = m[1]!;
    if (!WANTED.has(key)) return null;
    if (kib.has(key)) return `duplicate field ${key}`;
    // A used field without "kB" is not what we think it is; out-of-range stays null → error below.
    kib.set(key, m[3] ? safeInt(m[2]!) : null);
    return null;
  });
  if (bad) return fail(bad.why ? `meminfo: ${bad.why}` : `meminfo: line ${bad.n} is not "Key: value [kB]": ${quoteLine(bad.line)}`);
  for (const key of REQUIRED) {
    if (!kib.has(key)) return fail(`meminfo: missing ${key}`);
  }
  let badKey: string | null = null;
  const get = (key: string): number => {
    if (!kib.has(key)) return 0;
    const n = kib.get(key);
    if (n === null || n === undefined) {
      badKey ??= key;
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
  if (badKey !== null) return fail(`meminfo: ${badKey as string} is out of range`);
  if (value.memTotal === 0) return fail('meminfo: MemTotal is 0');
  if (value.memFree > value.memTotal) return fail('meminfo: MemFree exceeds MemTotal');
  if (value.swapFree > value.swapTotal) return fail('meminfo: SwapFree exceeds SwapTotal');
  return ok(value);
}
