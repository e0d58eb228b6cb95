import type { Clock } from '../../src/clock.js';

/**
 * A virtual clock for tests: `sleep` advances time at once (after letting other promise
 * callbacks run) and fires any timers that fall due, so seconds of waiting take microseconds.
 */
export class VirtualClock implements Clock {
  private t = 0;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  async sleep(ms: number): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.advance(ms);
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return () => {
      this.timers = this.timers.filter((x) => x.id !== id);
    };
  }

  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x.id !== due.id);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }
}
