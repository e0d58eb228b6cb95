/**
 * PSI averages decay exponentially when no new stall arrives: the kernel recomputes them every
 * PSI_FREQ (2 s + 1 jiffy) as avg = avg·e + sample·(1−e), with fixed-point factors e over
 * FIXED_1 = 2048 (kernel/sched/psi.c: EXP_10s 1677, EXP_60s 1981, EXP_300s 2034). With no stall
 * the sample is 0, so after n periods avg = avg0·eⁿ and we can compute when a value will fall
 * below a level instead of sampling until it does (the seed idea from the Qualcomm guest daemon).
 */
export const PSI_PERIOD_MS = 2000;
/** One jiffy at HZ=100, the slowest common tick; the period is 2 s + 1 jiffy. */
const PERIOD_SLACK_MS = 10;
/** Margin after the computed update so the value read is already the decayed one. */
const WAKE_MARGIN_MS = 50;

export const DECAY = { avg10: 1677 / 2048, avg60: 1981 / 2048, avg300: 2034 / 2048 } as const;

/**
 * Number of kernel averaging periods until `avg` (percent) falls strictly below `level`,
 * assuming no new stall. 0 when it already is; Infinity for a non-positive level.
 */
export function periodsUntilBelow(avg: number, level: number, factor: number): number {
  if (avg < level) return 0;
  if (level <= 0) return Infinity;
  // avg·factorⁿ < level  ⇔  n > ln(level/avg)/ln(factor)  (ln(factor) < 0)
  const n = Math.floor(Math.log(level / avg) / Math.log(factor)) + 1;
  // Guard against floating error at the boundary: step until the product is really below.
  let k = Math.max(0, n - 1);
  while (avg * factor ** k >= level) k++;
  return k;
}

/**
 * Milliseconds after an observation at which the value is sure to have decayed below `level`:
 * the kernel's next update may fall anywhere in the first period, so n periods always fit in
 * n·(2 s + slack) after the observation.
 */
export function msUntilBelow(avg: number, level: number, factor: number): number {
  const n = periodsUntilBelow(avg, level, factor);
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
    const t = at + msUntilBelow(reported[key], level, DECAY[key]);
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
