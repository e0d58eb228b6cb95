/**
 * A model of the kernel's PSI averaging, written from kernel/sched/psi.c and
 * include/linux/sched/loadavg.h (fixed point, FSHIFT 11): every 2 s period,
 * avg = calc_load(avg, EXP, pct) and the file prints LOAD_INT.LOAD_FRAC (truncated 2 decimals).
 * Independent of the agent's float maths, so tests can check one against the other.
 */
const FSHIFT = 11;
const FIXED_1 = 1 << FSHIFT;
export const EXP = { avg10: 1677, avg60: 1981, avg300: 2034 } as const;

function calcLoad(load: number, exp: number, active: number): number {
  let n = load * exp + active * (FIXED_1 - exp);
  if (active >= load) n += FIXED_1 - 1;
  return Math.floor(n / FIXED_1);
}

/** Fixed-point value for a printed percentage. */
export function fromPct(pct: number): number {
  return Math.round(pct * FIXED_1);
}

/** As /proc/pressure prints it: integer part and two truncated decimals. */
export function shown(fixed: number): number {
  const int = Math.floor(fixed / FIXED_1);
  const frac = Math.floor(((fixed & (FIXED_1 - 1)) * 100) / FIXED_1);
  return int + frac / 100;
}

/** One 2 s period with `stallPct` percent of it stalled. */
export function step(fixed: number, exp: number, stallPct = 0): number {
  return calcLoad(fixed, exp, fromPct(stallPct));
}
