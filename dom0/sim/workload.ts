import { MIB } from '../../src/units.js';
import type { Rng } from './rng.js';
import type { WorkloadSpec } from './scenario.js';

/** What a guest's programs want at one instant, KiB. */
export interface Demand {
  anonKib: number;
  cacheWsKib: number;
  commitKib: number;
}

/**
 * Plays one VM's workload trace: the piecewise-linear points (repeating if asked), scaled by
 * the VM's own random factor, plus random bursts drawn from the VM's own seeded stream.
 * Must be asked for monotonically increasing times (bursts are drawn as time passes).
 */
export class WorkloadPlayer {
  private readonly scale: number;
  private readonly phaseS: number;
  private nextBurstS: number;
  private burst: { startS: number; endS: number; anonKib: number; cacheKib: number } | null = null;

  constructor(private readonly spec: WorkloadSpec, private readonly rng: Rng) {
    this.scale = rng.between(spec.scale[0], spec.scale[1]);
    this.phaseS = rng.between(spec.phaseS[0], spec.phaseS[1]);
    this.nextBurstS = spec.bursts ? rng.between(spec.bursts.everyS[0], spec.bursts.everyS[1]) : Infinity;
  }

  /** Demand at `tS` seconds since the VM started. */
  at(tS: number): Demand {
    const { anon, cache } = this.trace(tS + this.phaseS);
    const b = this.spec.bursts;
    if (b) {
      if (this.burst && tS >= this.burst.endS) this.burst = null;
      while (!this.burst && tS >= this.nextBurstS) {
        const startS = this.nextBurstS;
        this.burst = {
          startS,
          endS: startS + this.rng.between(b.lastS[0], b.lastS[1]),
          anonKib: this.rng.between(b.anonMiB[0], b.anonMiB[1]) * MIB,
          cacheKib: this.rng.between(b.cacheMiB[0], b.cacheMiB[1]) * MIB,
        };
        this.nextBurstS = this.burst.endS + this.rng.between(b.everyS[0], b.everyS[1]);
        if (tS >= this.burst.endS) this.burst = null;
      }
    }
    const ramp = this.burst && b && b.rampS > 0 ? Math.min(1, (tS - this.burst.startS) / b.rampS) : 1;
    const anonKib = Math.round((anon + ramp * (this.burst?.anonKib ?? 0)) * this.scale);
    const cacheWsKib = Math.round((cache + ramp * (this.burst?.cacheKib ?? 0)) * this.scale);
    return { anonKib, cacheWsKib, commitKib: anonKib + this.spec.commitExtraMiB * MIB };
  }

  private trace(tS: number): { anon: number; cache: number } {
    const pts = this.spec.points;
    const t = this.spec.repeatS ? tS % this.spec.repeatS : tS;
    let prev = pts[0]!;
    if (t <= prev.atS) return { anon: prev.anonMiB * MIB, cache: prev.cacheMiB * MIB };
    for (const p of pts.slice(1)) {
      if (t <= p.atS) {
        const f = (t - prev.atS) / Math.max(1e-9, p.atS - prev.atS);
        return {
          anon: (prev.anonMiB + f * (p.anonMiB - prev.anonMiB)) * MIB,
          cache: (prev.cacheMiB + f * (p.cacheMiB - prev.cacheMiB)) * MIB,
        };
      }
      prev = p;
    }
    return { anon: prev.anonMiB * MIB, cache: prev.cacheMiB * MIB };
  }
}
