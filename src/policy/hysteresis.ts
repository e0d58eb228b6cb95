import type { PolicyConfig } from './config.js';

/**
 * Is this pass's change worth making? qmemman's is_balance_req_significant, generalised:
 * a pass moves memory only if the targets change by more than `hysteresis.total` in all, or
 * an urgent VM (under pressure) would move by more than `hysteresis.urgent`. Some changes are
 * never held back: current targets that no longer fit the pool (a reservation arrived, free
 * memory fell) and current targets outside a VM's [floor, ceiling].
 */
export interface Moves {
  current: ArrayLike<number>;
  proposed: ArrayLike<number>;
  floor: ArrayLike<number>;
  ceiling: ArrayLike<number>;
  urgent: ArrayLike<boolean>;
}

export interface Significance {
  significant: boolean;
  why: string;
  totalKib: number;
}

export function significance(m: Moves, pool: number, cfg: PolicyConfig): Significance {
  const n = m.current.length;
  let total = 0;
  let sumCurrent = 0;
  let outOfBounds = -1;
  let urgent = -1;
  for (let i = 0; i < n; i++) {
    const c = m.current[i]!;
    const d = Math.abs(m.proposed[i]! - c);
    total += d;
    sumCurrent += c;
    if (outOfBounds < 0 && (c < m.floor[i]! || c > m.ceiling[i]!) && d > 0) outOfBounds = i;
    if (urgent < 0 && m.urgent[i] && d > cfg.hysteresis.urgent) urgent = i;
  }
  const { total: threshold } = cfg.hysteresis;
  if (total === 0) return { significant: false, why: 'no change', totalKib: 0 };
  if (threshold === 0) return { significant: true, why: 'hysteresis off', totalKib: total };
  if (sumCurrent > pool) return { significant: true, why: 'current targets exceed the pool', totalKib: total };
  if (outOfBounds >= 0) return { significant: true, why: 'a target is outside its floor..ceiling', totalKib: total };
  if (urgent >= 0) return { significant: true, why: 'a VM under pressure needs memory', totalKib: total };
  if (total > threshold) return { significant: true, why: 'change above threshold', totalKib: total };
  return { significant: false, why: 'change below threshold', totalKib: total };
}
