import { describe, expect, it } from 'vitest';
import { memoryChanged, Planner, usedChanged, DEFAULT_SCHEDULE, type MemView, type PsiView, type ScheduleConfig } from '../../domU-agent/src/schedule.js';
import { msUntilBelow } from '../../domU-agent/src/decay.js';
import { EXP, shown, step } from './kernel-psi.js';

const GiB = 1024 * 1024;
const mem = (over: Partial<MemView> = {}): MemView => ({ totalKib: 4 * GiB, usedKib: 1 * GiB, availKib: 3 * GiB, commitKib: 2 * GiB, swapUsedKib: 0, ...over });
const psi = (over: Partial<PsiView> = {}): PsiView => ({ total: 0, avg10: 0, avg60: 0, ...over });
const MEM = { psi: false, mem: true };

/** Drives a Planner the way the agent's loop does, on a virtual time line, recording writes. */
function rig(cfg: Partial<ScheduleConfig> = {}) {
  // Pinned here so the timings below do not move with the CLI defaults.
  const p = new Planner({ ...DEFAULT_SCHEDULE, psiIntervalMs: 100, stallUs: 1000, ...cfg });
  const writes: { at: number; reason: string }[] = [];
  let m = mem();
  let s: PsiView | null = psi();
  const wake = (now: number) => {
    const due = p.due(now);
    const reason = p.observe(now, { ...(due.psi ? { psi: s } : {}), ...(due.mem ? { mem: m } : {}) }, due);
    if (reason) {
      writes.push({ at: now, reason });
      p.published(now, reason, m, s);
    }
    return p.nextWake(now);
  };
  /** Runs the loop from `from` until `until`, following nextWake exactly like the agent. */
  const run = (from: number, until: number) => {
    let t = from;
    let wakes = 0;
    while (t <= until) {
      const next = wake(t);
      wakes++;
      t = next > t ? next : t + 1;
    }
    return { wakes, next: t };
  };
  return {
    p, writes, run, wake,
    set mem(v: MemView) { m = v; },
    set psi(v: PsiView | null) { s = v; },
  };
}

describe('meminfo-writer thresholds', () => {
  it('reports a used change above the threshold, not at or below it', () => {
    expect(usedChanged(mem(), mem({ usedKib: GiB + 30000 }), 30000)).toBe(false);
    expect(usedChanged(mem(), mem({ usedKib: GiB + 30001 }), 30000)).toBe(true);
    expect(usedChanged(mem(), mem({ usedKib: GiB - 30001 }), 30000)).toBe(true);
  });

  it('halves the threshold for growth above ~77 % utilisation (used/10 > (total+12)/13), not for shrinking', () => {
    const total = 1_300_000; // 77 % ≈ 1 000 000
    const busy = mem({ totalKib: total, usedKib: 1_010_000 });
    expect(usedChanged(busy, { ...busy, usedKib: 1_010_000 + 15001 }, 30000)).toBe(true);
    expect(usedChanged(busy, { ...busy, usedKib: 1_010_000 + 15000 }, 30000)).toBe(false);
    expect(usedChanged(busy, { ...busy, usedKib: 1_010_000 - 20000 }, 30000)).toBe(false);
    const calm = mem({ totalKib: total, usedKib: 900_000 });
    expect(usedChanged(calm, { ...calm, usedKib: 900_000 + 20000 }, 30000)).toBe(false);
  });

  it('applies the same threshold to MemAvailable, Committed_AS, swap used and the balloon size', () => {
    for (const k of ['availKib', 'commitKib', 'swapUsedKib', 'totalKib'] as const) {
      expect(memoryChanged(mem(), mem({ [k]: mem()[k] + 30001 }), 30000)).toBe(true);
      expect(memoryChanged(mem(), mem({ [k]: mem()[k] + 29999 }), 30000)).toBe(false);
    }
  });
});

describe('Planner', () => {
  it('publishes at once on start, then nothing while calm until the heartbeat', () => {
    const r = rig();
    r.run(0, 60_000 + 150);
    expect(r.writes).toEqual([{ at: 0, reason: 'first' }, { at: 60_000, reason: 'heartbeat' }]);
  });

  it('reports a memory change on the next meminfo sample, and ignores small drift', () => {
    const r = rig();
    r.run(0, 2500);
    r.mem = mem({ usedKib: GiB + 20000 });
    r.run(2501, 5500);
    expect(r.writes.map((w) => w.reason)).toEqual(['first']);
    r.mem = mem({ usedKib: GiB + 50000 });
    r.run(5501, 7000);
    expect(r.writes[1]).toEqual({ at: 6000, reason: 'memory' });
  });

  it('caps writes at the configured rate', () => {
    const r = rig({ intervalMs: 10, psiIntervalMs: 0 });
    let used = GiB;
    let t = 0;
    for (let i = 0; i < 100; i++) {
      used += 40000; // every sample is a real change
      r.mem = mem({ usedKib: used });
      t = r.run(t, t + 10).next;
    }
    const gaps = r.writes.slice(1).map((w, i) => w.at - r.writes[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(100);
    expect(r.writes.length).toBeGreaterThanOrEqual(9); // ~10/s over ~1 s
  });

  it('reports a growing stall total on the next stall poll (≤ psiInterval), then at most once per stall gap', () => {
    const r = rig();
    r.run(0, 1000);
    r.psi = psi({ total: 5000, avg10: 0.5 });
    r.run(1001, 1200);
    expect(r.writes[1]).toEqual({ at: 1100, reason: 'stall' });
    // Stalls keep growing: the next stall-only report waits for the 1 s stall gap.
    r.psi = psi({ total: 9000, avg10: 0.9 });
    r.run(1201, 2200);
    expect(r.writes[2]).toEqual({ at: 2100, reason: 'stall' });
  });

  it('lets a memory change through at the write rate even inside the stall gap', () => {
    const r = rig();
    r.run(0, 1000);
    r.psi = psi({ total: 5000, avg10: 0.5 });
    r.run(1001, 1150); // stall report at 1100
    r.psi = psi({ total: 9000, avg10: 0.9 }); // held by the stall gap until 2100
    r.run(1151, 1250);
    r.mem = mem({ usedKib: GiB + 100_000 });
    r.run(1251, 2050);
    expect(r.writes.slice(1)).toEqual([{ at: 1100, reason: 'stall' }, { at: 2000, reason: 'memory' }]);
  });

  it('ignores stall growth below --stall-us', () => {
    const r = rig({ stallUs: 1000 });
    r.run(0, 500);
    r.psi = psi({ total: 999 });
    r.run(501, 5000);
    expect(r.writes.map((w) => w.reason)).toEqual(['first']);
    r.psi = psi({ total: 1000 });
    r.run(5001, 5100);
    expect(r.writes.map((w) => w.reason)).toEqual(['first', 'stall']);
  });

  it('sends a decay report when the computed time comes and the average really fell', () => {
    const r = rig();
    r.psi = psi({ total: 100, avg10: 20, avg60: 0.05 });
    r.run(0, 10);
    const due = r.p.decayDueAt!;
    expect(due).toBe(msUntilBelow(20, 10, 'avg10'));
    r.psi = psi({ total: 100, avg10: 9.5, avg60: 0.05 });
    r.run(11, due + 200);
    expect(r.writes[1]).toMatchObject({ reason: 'decay' });
    expect(r.writes[1]!.at).toBeGreaterThanOrEqual(due);
    expect(r.writes[1]!.at).toBeLessThan(due + 100);
    // and the next one waits for 9.5 → 4.75.
    expect(r.p.decayDueAt).toBe(r.writes[1]!.at + msUntilBelow(9.5, 4.75, 'avg10'));
  });

  it('re-plans instead of reporting when small stalls kept the average up', () => {
    const r = rig();
    r.psi = psi({ total: 100, avg10: 20 });
    r.run(0, 10);
    const due = r.p.decayDueAt!;
    r.psi = psi({ total: 500, avg10: 14 }); // +400 µs: below --stall-us, but the average held
    r.run(11, due + 50);
    expect(r.writes.map((w) => w.reason)).toEqual(['first']);
    expect(r.p.decayDueAt).toBeGreaterThan(due);
  });

  it('without the fast path, sleeps between computed decay crossings instead of polling', () => {
    // PSI decays as the kernel computes it (one step per 2 s) from avg10 = 12 %.
    const p = new Planner({ ...DEFAULT_SCHEDULE, psiIntervalMs: 0, intervalMs: 3_600_000, heartbeatMs: 3_600_000 });
    let fixed = 12 * 2048;
    let kernelNow = 0;
    const psiAt = (t: number): PsiView => {
      while (kernelNow + 2000 <= t) {
        fixed = step(fixed, EXP.avg10);
        kernelNow += 2000;
      }
      return { total: 100, avg10: shown(fixed), avg60: 0 };
    };
    const writes: { at: number; avg10: number }[] = [];
    let t = 0;
    let wakes = 0;
    while (t < 120_000) {
      const due = p.due(t);
      const seen = psiAt(t);
      const reason = p.observe(t, { ...(due.psi ? { psi: seen } : {}), ...(due.mem ? { mem: mem() } : {}) }, due);
      if (reason) {
        writes.push({ at: t, avg10: seen.avg10 });
        p.published(t, reason, mem(), seen);
      }
      wakes++;
      t = Math.max(t + 1, p.nextWake(t));
    }
    // 12 → <6 → <3 → … → <0.1: one report per halving, each just after the crossing, and no
    // wake-ups in between (a 10 Hz poll would have woken 1200 times).
    expect(writes.map((w) => w.avg10).every((v, i, all) => i === 0 || v < all[i - 1]! / 2 || v < 0.1)).toBe(true);
    expect(writes.at(-1)!.avg10).toBeLessThan(0.1);
    // 12 → 5.39 → 2.42 → 1.08 → 0.48 → 0.21 → 0.09: first + 6 decay reports, 4 kernel periods apart.
    expect(writes.length).toBe(7);
    expect(writes.slice(1).map((w, i) => w.at - writes[i]!.at)).toEqual(Array(6).fill(msUntilBelow(12, 6, 'avg10')));
    expect(wakes).toBeLessThanOrEqual(writes.length + 1);
  });

  it('stops polling PSI on a kernel without it', () => {
    const r = rig();
    r.psi = null;
    const { wakes } = r.run(0, 10_000);
    expect(wakes).toBeLessThanOrEqual(11); // meminfo once a second, no 100 ms stall poll
    expect(r.p.due(20_000)).toEqual(MEM);
  });

  it('holds everything during a failure backoff, then retries', () => {
    const r = rig();
    r.run(0, 100);
    r.p.failed(200, 5000);
    r.mem = mem({ usedKib: 2 * GiB });
    const reasons: (string | null)[] = [];
    for (let t = 300; t <= 5300 && !reasons.includes('retry'); t += 100) {
      const due = r.p.due(t);
      reasons.push(r.p.observe(t, { psi: psi(), mem: mem({ usedKib: 2 * GiB }) }, due));
    }
    expect(reasons.filter(Boolean)).toEqual(['retry']);
    expect(reasons.indexOf('retry')).toBe((5200 - 300) / 100); // exactly when the backoff ends
  });

  it('kick() publishes at the next wake whatever changed', () => {
    const r = rig();
    r.run(0, 100);
    r.p.kick(150);
    expect(r.p.observe(150, {}, { psi: false, mem: false })).toBe('retry');
    expect(r.p.observe(151, {}, { psi: false, mem: false })).toBeNull();
  });

  describe('with the native helper\'s events (PSI trigger, meminfo watch)', () => {
    /** Like run(), but recording each wake and which sources it read. */
    function trace(r: ReturnType<typeof rig>, from: number, until: number) {
      const wakes: { at: number; psi: boolean; mem: boolean }[] = [];
      let t = from;
      while (t <= until) {
        wakes.push({ at: t, ...r.p.due(t) });
        const next = r.wake(t);
        t = next > t ? next : t + 1;
      }
      return wakes;
    }

    it('wakes only for the safety net and the heartbeat while nothing happens', () => {
      const r = rig({ safetyMs: 30_000 });
      r.run(0, 10);
      r.p.useEvents({ psi: true, mem: true });
      const wakes = trace(r, 11, 125_000);
      // One read of both when the helper came up, the 30 s safety net, the heartbeat (which
      // reads everything and restarts the safety net): no 100 ms stall poll, no 1 s sample.
      expect(wakes.map((x) => x.at)).toEqual([11, 30_011, 60_000, 90_000, 120_000]);
      expect(wakes.filter((x) => x.psi && x.mem).map((x) => x.at)).toEqual([11, 30_011, 90_000, 120_000]);
      // By default the safety net is the heartbeat's period: an idle agent wakes once a minute.
      const d = rig();
      d.run(0, 10);
      d.p.useEvents({ psi: true, mem: true });
      expect(trace(d, 11, 185_000).map((x) => x.at)).toEqual([11, 60_000, 120_000, 180_000]);
      expect(r.writes.map((w) => `${w.at}:${w.reason}`)).toEqual(['0:first', '60000:heartbeat', '120000:heartbeat']);
      expect(r.p.watchForms()).not.toBeNull();
    });

    it('a stall event reads PSI at once and reports the stall; the stall gap still holds', () => {
      const r = rig();
      r.run(0, 10);
      r.p.useEvents({ psi: true, mem: true });
      r.run(11, 5000);
      r.psi = psi({ total: 5000, avg10: 0.5 });
      expect(r.p.due(5000).psi).toBe(false); // no poll would see it
      r.p.stallEvent(5000);
      expect(r.p.due(5000)).toEqual({ psi: true, mem: false });
      r.wake(5000);
      expect(r.writes.at(-1)).toEqual({ at: 5000, reason: 'stall' });
      r.psi = psi({ total: 9000, avg10: 0.9 });
      r.p.stallEvent(5500);
      r.run(5500, 6100);
      expect(r.writes.slice(1)).toEqual([{ at: 5000, reason: 'stall' }, { at: 6000, reason: 'stall' }]); // held by the 1 s gap
    });

    it('after an event, polls PSI for one trigger window (the kernel\'s first event may precede the printed total), then stops', () => {
      const r = rig({ triggerWindowMs: 500 });
      r.run(0, 10);
      r.p.useEvents({ psi: true, mem: true });
      r.run(11, 5000);
      r.p.stallEvent(5000); // the total has not moved yet
      const reads: number[] = [];
      let t = 5000;
      while (t < 126_000) {
        if (t > 5150) r.psi = psi({ total: 7000, avg10: 0.05 }); // it moves 150 ms later (averages calm: no decay reports)
        if (r.p.due(t).psi) reads.push(t);
        t = Math.max(t + 1, r.wake(t));
      }
      expect(r.writes.slice(1)).toEqual([{ at: 5200, reason: 'stall' }, { at: 65_200, reason: 'heartbeat' }, { at: 125_200, reason: 'heartbeat' }]);
      // Every 100 ms through the window and once past it, then the safety net (restarted by the
      // heartbeat's full read at 65 200, so it coincides with the next heartbeat).
      expect(reads).toEqual([5000, 5100, 5200, 5300, 5400, 5500, 5600, 125_200]);
    });

    it('a meminfo event reads meminfo at once; a real change is reported, noise is not', () => {
      const r = rig();
      r.run(0, 10);
      r.p.useEvents({ psi: true, mem: true });
      r.run(11, 3000);
      r.mem = mem({ usedKib: GiB + 20_000 }); // the helper may fire on its way (it is conservative)
      r.p.memEvent();
      expect(r.p.due(3000)).toEqual({ psi: false, mem: true });
      r.wake(3000);
      expect(r.writes).toHaveLength(1);
      expect(r.p.watchForms()).not.toBeNull(); // new ranges around the new sample
      r.mem = mem({ usedKib: GiB + 40_000 });
      r.p.memEvent();
      r.wake(4000);
      expect(r.writes.at(-1)).toEqual({ at: 4000, reason: 'memory' });
    });

    it('samples meminfo itself when no ranges fit (before the first report, or while one is held back)', () => {
      const r = rig();
      r.p.useEvents({ psi: true, mem: true });
      expect(r.p.watchForms()).toBeNull(); // nothing published yet
      r.run(0, 10);
      expect(r.p.watchForms()).not.toBeNull();
      // The watch fires, a report is due, but the write fails: backoff.
      const grown = mem({ usedKib: GiB + 50_000 });
      r.mem = grown;
      r.p.memEvent();
      const due = r.p.due(200);
      expect(r.p.observe(200, { mem: grown }, due)).toBe('memory');
      r.p.failed(200, 5000);
      expect(r.p.watchForms()).toBeNull();
      const reads = trace(r, 201, 3300).filter((x) => x.mem);
      expect(reads.map((x) => x.at)).toEqual([1200, 2200, 3200]);
    });

    it('losing the helper reads both at once, then polls as before', () => {
      const r = rig();
      r.run(0, 10);
      r.p.useEvents({ psi: true, mem: true });
      r.run(11, 20_000);
      r.p.useEvents({ psi: false, mem: false });
      expect(r.p.due(20_001)).toEqual({ psi: true, mem: true });
      r.wake(20_001);
      expect(r.p.nextWake(20_001)).toBe(20_101); // the 100 ms stall poll again
      expect(r.p.watchForms()).toBeNull();
    });
  });
});
