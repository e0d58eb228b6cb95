import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../dom0/sim/virtual-clock.js';

describe('VirtualClock', () => {
  it('fires timers in time order, then creation order, and lets each one\'s async work settle first', async () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.setTimer(20, () => log.push('b@20'));
    c.setTimer(10, () => {
      log.push('a@10');
      // async continuation of a timer: must finish before the next timer fires
      void Promise.resolve().then(() => Promise.resolve()).then(() => log.push('a-async'));
    });
    c.setTimer(20, () => log.push('c@20'));
    await c.runUntil(100);
    expect(log).toEqual(['a@10', 'a-async', 'b@20', 'c@20']);
    expect(c.now()).toBe(100);
  });

  it('sleep resolves at virtual time; cancelled timers never fire; time stops at the horizon', async () => {
    const c = new VirtualClock(1000);
    const woke: number[] = [];
    void c.sleep(500).then(() => woke.push(c.now()));
    const cancel = c.setTimer(200, () => woke.push(-1));
    cancel();
    c.setTimer(5000, () => woke.push(-2));
    await c.runUntil(2000);
    expect(woke).toEqual([1500]);
    expect(c.pendingTimers()).toBe(1);
  });

  it('timers scheduled by timers run within the same run', async () => {
    const c = new VirtualClock();
    let n = 0;
    const tick = () => {
      n++;
      c.setTimer(100, tick);
    };
    c.setTimer(100, tick);
    await c.runUntil(1000);
    expect(n).toBe(10);
  });
});
