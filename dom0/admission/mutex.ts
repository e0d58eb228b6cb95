/**
 * A FIFO lock: admission requests run one at a time, in arrival order (qmemman's GLOBAL_LOCK).
 * `acquire` resolves to the release function; releasing twice is harmless.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    this.waiting++;
    return prev.then(() => {
      this.waiting--;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        release();
      };
    });
  }

  /** Requests queued behind the current holder (for logs and state). */
  queued(): number {
    return this.waiting;
  }
}
