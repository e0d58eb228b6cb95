/**
 * Time as the shell sees it. The real clock uses Date/setTimeout; the simulator passes a
 * virtual clock so long traces run in milliseconds and deterministically.
 */
export interface Clock {
  /** Milliseconds, monotonic for the process. */
  now(): number;
  /** Resolves after ms (virtual time for a virtual clock). */
  sleep(ms: number): Promise<void>;
  /** Calls fn after ms; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};
