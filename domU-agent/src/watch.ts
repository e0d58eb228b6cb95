import type { MemView } from './schedule.js';

/**
 * The meminfo watch the native helper runs for the agent (domU-agent/native/psi-trigger.c).
 * The helper reads /proc/meminfo every interval and wakes the agent only when a linear form of
 * the raw fields leaves its range. This file computes those ranges from the last published
 * report, so that, as long as every form is in range, memoryChanged(published, now) is false
 * (test/agent/watch.test.ts checks this against the rule itself). Pure.
 */

/** Raw columns, in the helper's order. */
export const COLUMNS = ['MemTotal', 'MemFree', 'Buffers', 'Cached', 'SwapTotal', 'SwapFree', 'MemAvailable', 'Committed_AS', 'balloon'] as const;
const [TOT, FREE, BUF, CACHE, SWTOT, SWFREE, AVAIL, COMMIT, BCUR] = [0, 1, 2, 3, 4, 5, 6, 7, 8] as const;

export interface Form {
  lo: number;
  hi: number;
  /** One coefficient per column. */
  c: number[];
}

/** The raw values, in COLUMNS order (balloon 0 when there is none). */
export type Raw = readonly number[];

/** Unbounded side of a range (the helper's int64 parser takes it; far beyond any KiB value). */
export const NO_BOUND = Number.MAX_SAFE_INTEGER;

export function evalForm(f: Form, raw: Raw): number {
  let s = 0;
  for (let i = 0; i < COLUMNS.length; i++) s += (f.c[i] ?? 0) * raw[i]!;
  return s;
}

export function inForms(forms: readonly Form[], raw: Raw): boolean {
  return forms.every((f) => {
    const v = evalForm(f, raw);
    return v >= f.lo && v <= f.hi;
  });
}

function col(entries: [number, number][]): number[] {
  const c = new Array<number>(COLUMNS.length).fill(0);
  for (const [i, k] of entries) c[i] = k;
  return c;
}

/**
 * Forms under which no memory report is due, around `cur`; null when `cur` lies in none (a
 * report is due, or `cur` sits on a boundary the forms cannot express: then the agent samples
 * meminfo itself at its interval).
 *
 * usedKib = max(0, L), L = total − free − buffers − cached + swapTotal − swapFree, with the
 * balloon's current size as total when there is one (cur.totalIsBalloon). Raising L by d
 * raises usedKib by at most d, so ranges on L bound usedKib. meminfo-writer's rule allows used
 * to grow by T/2 when busy and by T when not; the region "not busy" is taken from the
 * sufficient linear condition 13·used ≤ 10·total + 120 (then ⌊used/10⌋ ≤ ⌊(total+12)/13⌋).
 * Two alternatives therefore: grow ≤ T/2 (busy or not), or grow ≤ T while surely not busy. The
 * one holding `cur` is chosen, the wider one when both do. MemAvailable may fall and
 * Committed_AS rise only by the grow threshold (memoryChanged's demand rule).
 */
export function quietForms(pub: MemView, cur: MemView, thresholdKib: number, growKib = thresholdKib): Form[] | null {
  const T = thresholdKib;
  const G = Math.min(growKib, T); // demand rising counts at the grow threshold
  const t = cur.totalIsBalloon ? BCUR : TOT;
  const L: [number, number][] = [[t, 1], [FREE, -1], [BUF, -1], [CACHE, -1], [SWTOT, 1], [SWFREE, -1]];
  const usedLo = pub.usedKib - T > 0 ? pub.usedKib - T : -NO_BOUND;
  const common: Form[] = [
    { lo: pub.availKib - G, hi: pub.availKib + T, c: col([[AVAIL, 1]]) },
    { lo: pub.commitKib - T, hi: pub.commitKib + G, c: col([[COMMIT, 1]]) },
    { lo: pub.swapUsedKib - T, hi: pub.swapUsedKib + T, c: col([[SWTOT, 1], [SWFREE, -1]]) },
    { lo: pub.totalKib - T, hi: pub.totalKib + T, c: col([[t, 1]]) },
  ];
  // 13·L − 10·total ≤ 120: L's coefficients times 13, total's 13 − 10.
  const notBusy: Form = { lo: -NO_BOUND, hi: 120, c: col(L.map(([i, k]) => [i, i === t ? 13 * k - 10 : 13 * k])) };
  const wide = [{ lo: usedLo, hi: pub.usedKib + T, c: col(L) }, notBusy, ...common];
  const narrow = [{ lo: usedLo, hi: pub.usedKib + Math.floor(T / 2), c: col(L) }, ...common];
  const raw = rawOf(cur);
  if (raw === null) return null;
  if (inForms(wide, raw)) return wide;
  if (inForms(narrow, raw)) return narrow;
  return null;
}

/**
 * A raw point with exactly cur's derived numbers (used = L when L ≥ 0): what the helper would
 * see for this MemView. Only MemView's own numbers matter to the forms, so any such point does.
 * null when usedKib is 0, where L is not known (L ≤ 0 could be anything).
 */
function rawOf(cur: MemView): number[] | null {
  if (cur.usedKib <= 0) return null;
  const raw = new Array<number>(COLUMNS.length).fill(0);
  raw[cur.totalIsBalloon ? BCUR : TOT] = cur.totalKib;
  raw[SWTOT] = cur.swapUsedKib;
  raw[AVAIL] = cur.availKib;
  raw[COMMIT] = cur.commitKib;
  // L = total − free + swapUsed = used
  raw[FREE] = cur.totalKib + cur.swapUsedKib - cur.usedKib;
  return raw;
}

/** The helper's command line for these forms ("w" alone: no watch). */
export function encodeWatch(forms: readonly Form[] | null): string {
  if (!forms) return 'w\n';
  return `w ${forms.map((f) => [f.lo, f.hi, ...f.c].join(' ')).join(' ')}\n`;
}
