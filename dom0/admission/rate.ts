/**
 * qmemman's progress rule for freeing memory (anchors §1.8): once a squeeze has run for a whole
 * check period, it fails if less than `minKibPerS` × period was freed over the last period
 * (100 MB/s over 3 s = 300 MiB), instead of hanging on a VM whose balloon does not move.
 * Pure: samples go in with their time; nothing here reads a clock.
 */

export interface RateRule {
  periodMs: number;
  minKibPerS: number;
}

/** qmemman's CHECK_PERIOD_S = 3 and CHECK_MB_S = 100 (its "MB" is 2^20 bytes). */
export const QMEMMAN_RATE: RateRule = { periodMs: 3000, minKibPerS: 100 * 1024 };

export interface Sample {
  atMs: number;
  /** The quantity that must grow (free memory) or, negated, shrink (a VM's allocation). */
  kib: number;
}

export class RateWindow {
  private readonly samples: Sample[] = [];

  constructor(private readonly rule: RateRule) {}

  add(s: Sample): void {
    this.samples.push(s);
    // Keep one sample at or before the window start, so the window is always a full period.
    while (this.samples.length > 2 && this.samples[1]!.atMs <= s.atMs - this.rule.periodMs) this.samples.shift();
  }

  /** The oldest sample still needed: the value a full period ago (or the first one). */
  base(): Sample | null {
    return this.samples[0] ?? null;
  }

  /** True once a full period is covered and less than the minimum was gained over it. */
  tooSlow(): boolean {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs - first.atMs < this.rule.periodMs) return false;
    const spanS = (last.atMs - first.atMs) / 1000;
    return last.kib - first.kib < this.rule.minKibPerS * spanS;
  }

  /** Gained over the window, KiB. */
  gainedKib(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first && last ? last.kib - first.kib : 0;
  }

  spanMs(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first && last ? last.atMs - first.atMs : 0;
  }
}
