import type { Clock } from '../../src/clock.js';

/**
 * A virtual clock: time only moves when `runUntil` moves it, timers fire in (time, creation)
 * order, and every async continuation they start settles before the next timer fires. A long
 * trace runs in a fraction of its length and the same inputs always give the same run.
 *
 * Everything driven by it must be in-process (the embedded xenstore): a reply from a real
 * socket would arrive at a real time the clock knows nothing about.
 */
interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(startMs = 0) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve));
  }

  setTimer(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    // Sorted insert: few timers are ever pending (one per loop), so a list is enough.
    let i = this.timers.length;
    while (i > 0 && later(this.timers[i - 1]!, timer)) i--;
    this.timers.splice(i, 0, timer);
    return () => {
      const j = this.timers.indexOf(timer);
      if (j >= 0) this.timers.splice(j, 1);
    };
  }

  /** Fires every timer due up to `endMs` (letting each one's async work settle), then stops there. */
  async runUntil(endMs: number): Promise<void> {
    await settle();
    for (;;) {
      const next = this.timers[0];
      if (!next || next.at > endMs) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await settle();
    }
    this.t = Math.max(this.t, endMs);
  }

  async advance(ms: number): Promise<void> {
    await this.runUntil(this.t + ms);
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}

function later(a: Timer, b: Timer): boolean {
  return a.at > b.at || (a.at === b.at && a.seq > b.seq);
}

/** Lets every queued microtask chain run (one macrotask turn drains them all). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
