import type { Clock } from '../../src/clock.js';

/** Real time sped up `speed` times (1 = real time): for watching a long scenario live. */
export function scaledClock(speed: number): Clock {
  if (!(speed > 0)) throw new Error(`speed must be > 0, got ${speed}`);
  const origin = performance.now();
  return {
    now: () => (performance.now() - origin) * speed,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms / speed)),
    setTimer: (ms, fn) => {
      const t = setTimeout(fn, ms / speed);
      return () => clearTimeout(t);
    },
  };
}
