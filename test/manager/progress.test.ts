import { describe, expect, it } from 'vitest';
import { trackProgress, type ProgressTrack } from '../../dom0/manager/progress.js';

const opts = { stuckAfterMs: 5000, toleranceKib: 4096 };
const MiB = 1024;

function run(steps: { t: number; actual: number; target: number | null }[]) {
  let track: ProgressTrack | undefined;
  const events: (string | null)[] = [];
  for (const s of steps) {
    const r = trackProgress(track, s.actual, s.target, s.t, opts);
    track = r.track;
    events.push(r.event);
  }
  return { track, events };
}

describe('trackProgress', () => {
  it('marks a VM stuck after 5 s without progress toward its target', () => {
    const { track, events } = run([
      { t: 0, actual: 1000 * MiB, target: 500 * MiB },
      { t: 4999, actual: 1000 * MiB, target: 500 * MiB },
      { t: 5000, actual: 1000 * MiB, target: 500 * MiB },
    ]);
    expect(events).toEqual([null, null, 'stuck']);
    expect(track?.stuck).toBe(true);
  });

  it('a slowly moving VM is not stuck', () => {
    const { track } = run([
      { t: 0, actual: 1000 * MiB, target: 500 * MiB },
      { t: 4000, actual: 990 * MiB, target: 500 * MiB },
      { t: 8000, actual: 980 * MiB, target: 500 * MiB },
      { t: 12_000, actual: 970 * MiB, target: 500 * MiB },
    ]);
    expect(track?.stuck).toBe(false);
  });

  it('clears stuck when the VM moves toward its target', () => {
    const { events, track } = run([
      { t: 0, actual: 1000 * MiB, target: 500 * MiB },
      { t: 6000, actual: 1000 * MiB, target: 500 * MiB },
      { t: 9000, actual: 900 * MiB, target: 500 * MiB },
    ]);
    expect(events).toEqual([null, 'stuck', 'unstuck']);
    expect(track?.stuck).toBe(false);
  });

  it('a VM within tolerance of its target is never stuck', () => {
    const { events } = run([
      { t: 0, actual: 502 * MiB, target: 500 * MiB },
      { t: 60_000, actual: 502 * MiB, target: 500 * MiB },
    ]);
    expect(events).toEqual([null, null]);
  });

  it('a new target restarts the grace period but does not clear stuck by itself', () => {
    const a = run([
      { t: 0, actual: 1000 * MiB, target: 500 * MiB },
      { t: 4000, actual: 1000 * MiB, target: 600 * MiB },
      { t: 8000, actual: 1000 * MiB, target: 600 * MiB },
    ]);
    expect(a.events).toEqual([null, null, null]);
    const b = run([
      { t: 0, actual: 1000 * MiB, target: 500 * MiB },
      { t: 5000, actual: 1000 * MiB, target: 500 * MiB },
      { t: 6000, actual: 1000 * MiB, target: 600 * MiB },
    ]);
    expect(b.track?.stuck).toBe(true);
  });

  it('a target moved further the same way (a moderated shrink step) keeps the clock running', () => {
    // Found in the Xen lab: a pinned guest was flagged only once the stepwise shrink reached
    // the floor, 14 s after its balloon stopped.
    const steps = [0, 2000, 4000, 6000].map((t, i) => ({ t, actual: 768 * MiB, target: (700 - 70 * i) * MiB }));
    const r = run(steps);
    expect(r.events).toEqual([null, null, null, 'stuck']);
    // ...while a move the other way (now asked to grow) is a new task with its own grace period.
    const back = run([...steps.slice(0, 3), { t: 6000, actual: 768 * MiB, target: 900 * MiB }]);
    expect(back.events).toEqual([null, null, null, null]);
  });
});
