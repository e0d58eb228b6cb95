/**
 * PSI averages decay exponentially when no new stall arrives: every PSI_FREQ (2 s + 1 jiffy) the
 * kernel recomputes avg = calc_load(avg, EXP, stall%) in 11-bit fixed point (kernel/sched/psi.c,
 * EXP_10s 1677, EXP_60s 1981, EXP_300s 2034 over FIXED_1 = 2048) and prints it truncated to two
 * decimals. With no stall, after n periods avg ≈ avg0·(EXP/2048)ⁿ, so the agent can compute when
 * a value will fall below a level and sleep until then instead of sampling until it does (the
 * seed idea from the Qualcomm guest daemon). The computation iterates the kernel's own integer
 * step, because its rounding makes small values fall faster than the pure exponential.
 */
export const PSI_PERIOD_MS = 2000;
/** One jiffy at HZ=100, the slowest common tick; the period is 2 s + 1 jiffy. */
const PERIOD_SLACK_MS = 10;
/** Margin after the computed update so the value read is already the decayed one. */
const WAKE_MARGIN_MS = 50;
const FIXED_1 = 2048;

export type AvgKey = 'avg10' | 'avg60' | 'avg300';
export const EXP_FIXED: Record<AvgKey, number> = { avg10: 1677, avg60: 1981, avg300: 2034 };
/** Per-period factor, for reasoning and tests. */
export const DECAY: Record<AvgKey, number> = { avg10: 1677 / FIXED_1, avg60: 1981 / FIXED_1, avg300: 2034 / FIXED_1 };

/** What /proc/pressure prints for a fixed-point average (LOAD_INT.LOAD_FRAC, truncated). */
function printed(fixed: number): number {
  return Math.floor(fixed / FIXED_1) + Math.floor(((fixed % FIXED_1) * 100) / FIXED_1) / 100;
}

/** The largest fixed-point value that prints as `pct`: the hidden state can be anything up to it. */
function largestFixed(pct: number): number {
  const hundredths = Math.round(pct * 100);
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths % 100;
  return whole * FIXED_1 + Math.ceil(((frac + 1) * FIXED_1) / 100) - 1;
}

/**
 * Kernel averaging periods until a printed average `avg` prints strictly below `level`,
 * assuming no new stall and the largest hidden value consistent with `avg` (so never early).
 * 0 when it already is below; Infinity for a level that can never be passed (≤ 0).
 */
export function periodsUntilBelow(avg: number, level: number, key: AvgKey): number {
  if (avg < level) return 0;
  if (level <= 0) return Infinity;
  let fixed = largestFixed(avg);
  let n = 0;
  // calc_load(load, exp, 0) = load·exp / FIXED_1, rounded down. ≤ ~4000 steps even for avg300 from 100 %.
  while (printed(fixed) >= level && fixed > 0) {
    fixed = Math.floor((fixed * EXP_FIXED[key]) / FIXED_1);
    n++;
  }
  return n;
}

/**
 * Milliseconds after an observation by which the value has surely decayed below `level`: the
 * kernel's next update may fall anywhere in the first period, so n periods always fit in
 * n·(2 s + slack) after the observation.
 */
export function msUntilBelow(avg: number, level: number, key: AvgKey): number {
  const n = periodsUntilBelow(avg, level, key);
  if (n === 0) return 0;
  if (!Number.isFinite(n)) return Infinity;
  return n * (PSI_PERIOD_MS + PERIOD_SLACK_MS) + WAKE_MARGIN_MS;
}

/**
 * The next level worth reporting on the way down: half the reported value, and the calm level
 * itself once half would pass it. null when the value is already calm (nothing to wait for).
 */
export function nextLevelDown(reported: number, calm: number): number | null {
  if (reported < calm) return null;
  const half = reported / 2;
  return half > calm ? half : calm;
}

/** Averages the agent follows on the way down (avg300 moves too slowly; the heartbeat covers it). */
export interface DecayingAverages {
  avg10: number;
  avg60: number;
}

/**
 * When, after a report carrying `reported` averages at `at`, a decay report is due: the earliest
 * time either followed average falls past its next level. null when both are calm.
 */
export function decayReportAt(at: number, reported: DecayingAverages, calm: number): number | null {
  let best: number | null = null;
  for (const key of ['avg10', 'avg60'] as const) {
    const level = nextLevelDown(reported[key], calm);
    if (level === null) continue;
    const t = at + msUntilBelow(reported[key], level, key);
    if (best === null || t < best) best = t;
  }
  return best;
}

/** True when `now` averages have reached the level the last report was waiting for. */
export function decayedPastLevel(reported: DecayingAverages, now: DecayingAverages, calm: number): boolean {
  return (['avg10', 'avg60'] as const).some((key) => {
    const level = nextLevelDown(reported[key], calm);
    return level !== null && now[key] < level;
  });
}
