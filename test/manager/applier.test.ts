import { describe, expect, it } from 'vitest';
import { connectEmbedded, EmbeddedStore } from '../../src/xenstore/embedded/index.js';
import { ScriptedHost } from '../../dom0/host/scripted-host.js';
import { applyPlan } from '../../dom0/manager/applier.js';
import type { ApplyPlan } from '../../dom0/manager/plan.js';
import { VirtualClock } from '../../dom0/sim/virtual-clock.js';

/**
 * The applier's gate on growth, on a scripted host: what a grow may take is Xen free memory
 * minus the reserve, minus memory promised to VMs still growing, minus memory admission holds
 * for VM starts (read again at every poll of the free-before-allocate wait).
 */
const MiB = 1024;

function setup(freeMiB: number) {
  const host = new ScriptedHost({
    totalKib: (1000 + 1000 + freeMiB) * MiB,
    domains: [
      { domid: 1, name: 'donor', actualKib: 1000 * MiB, maxmemKib: 1001 * MiB, balloon: { kind: 'stuck' } },
      { domid: 2, name: 'grower', actualKib: 1000 * MiB, maxmemKib: 1001 * MiB },
    ],
  });
  const xs = connectEmbedded(new EmbeddedStore(), 0);
  const clock = new VirtualClock();
  const grow: ApplyPlan = {
    shrinks: [{ domid: 1, name: 'donor', fromKib: 1000 * MiB, toKib: 900 * MiB, maxmemKib: null, reason: 'test' }],
    grows: [{ domid: 2, name: 'grower', fromKib: 1000 * MiB, toKib: 1300 * MiB, maxmemKib: 1301 * MiB, reason: 'test' }],
    skipped: [],
  };
  return { host, xs, clock, grow };
}

async function drive<T>(clock: VirtualClock, p: Promise<T>): Promise<T> {
  let done = false;
  void p.finally(() => { done = true; });
  for (let i = 0; i < 100 && !done; i++) await clock.advance(100);
  return p;
}

describe('applier: room for growth', () => {
  it('without reservations a grow takes free memory beyond the reserve', async () => {
    const { host, xs, clock, grow } = setup(500);
    const r = await drive(clock, applyPlan(grow, await host.facts(), { xs, host, clock, promisedKib: () => 0, onApplied: () => {} },
      { reserveKib: 64 * MiB, waitMaxMs: 1000, waitPollMs: 100 }));
    expect(r.applied.filter((a) => a.phase === 'grow').map((a) => a.action.toKib)).toEqual([1300 * MiB]);
  });

  it('memory held for a VM start is not room for growth', async () => {
    const { host, xs, clock, grow } = setup(500);
    const r = await drive(clock, applyPlan(grow, await host.facts(), {
      xs, host, clock, promisedKib: () => 0, onApplied: () => {}, reservedKib: () => 400 * MiB,
    }, { reserveKib: 64 * MiB, waitMaxMs: 1000, waitPollMs: 100 }));
    // 500 free - 64 reserve - 400 reserved = 36 MiB: a partial grow at most, never 300 MiB.
    const grown = r.applied.filter((a) => a.phase === 'grow').map((a) => a.action.toKib);
    expect(grown).toEqual([1036 * MiB]);
  });

  it('while growth is held (a VM start being admitted) every grow is deferred at once, without waiting', async () => {
    const { host, xs, clock, grow } = setup(500);
    let held: string | null = 'held while a start of new is admitted';
    const r = await drive(clock, applyPlan(grow, await host.facts(), {
      xs, host, clock, promisedKib: () => 0, onApplied: () => {}, growthHeld: () => held,
    }, { reserveKib: 64 * MiB, waitMaxMs: 1000, waitPollMs: 100 }));
    expect(r.applied.map((a) => a.phase)).toEqual(['shrink']);
    expect(r.deferred).toEqual([{ domid: 2, name: 'grower', why: 'held while a start of new is admitted' }]);
    expect(host.calls.filter((c) => c.op === 'facts')).toHaveLength(1); // ours: no wait polled
    // A hold that starts during the wait ends it at the next poll.
    held = null;
    const during = setup(0);
    during.clock.setTimer(250, () => { held = 'held while a start of new is admitted'; });
    const r2 = await drive(during.clock, applyPlan(during.grow, await during.host.facts(), {
      xs: during.xs, host: during.host, clock: during.clock, promisedKib: () => 0, onApplied: () => {}, growthHeld: () => held,
    }, { reserveKib: 64 * MiB, waitMaxMs: 1000, waitPollMs: 100 }));
    expect(r2.deferred.map((d) => d.why)).toEqual(['held while a start of new is admitted']);
    expect(during.host.calls.filter((c) => c.op === 'facts')).toHaveLength(1 + 3); // polls at 100, 200, 300 ms, not 10

  });

  it('a reservation made during the wait counts from the next poll on', async () => {
    const { host, xs, clock, grow } = setup(300);
    let reserved = 0;
    clock.setTimer(300, () => { reserved = 450 * MiB; });
    const r = await drive(clock, applyPlan(grow, await host.facts(), {
      xs, host, clock, promisedKib: () => 0, onApplied: () => {}, reservedKib: () => reserved,
    }, { reserveKib: 64 * MiB, waitMaxMs: 1000, waitPollMs: 100 }));
    // The stuck donor frees nothing, so the pass waits its full second and sees the reservation.
    expect(r.applied.filter((a) => a.phase === 'grow')).toEqual([]);
    expect(r.deferred.map((d) => d.name)).toEqual(['grower']);
  });
});
