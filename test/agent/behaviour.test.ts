import { describe, expect, it } from 'vitest';
import type { Published } from '../../domU-agent/src/agent.js';
import { parseGuestReport, qubesUsedKib } from '../../src/schemas/report.js';
import { peerSkipReason } from '../peer/daemon.js';
import { FakeClock } from './fake-clock.js';
import { guestConnect, introduceGuest, makeAgent, ScriptedProc, usePeerFixture, XEN_SYS, type AgentRig } from './rig.js';

/**
 * The agent's timing and publishers on a fake clock, as an unprivileged domU on the real C
 * xenstored, reading a scripted /proc tree the test rewrites.
 */
const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/agent/behaviour.test.ts: real C xenstored unavailable (${skip})`);

describe.skipIf(skip !== null)('agent behaviour (fake clock, real C xenstored, guest ring)', () => {
  const peer = usePeerFixture();
  let nextDomid = 20;

  async function setup(opts: { fixture?: string; sys?: boolean; config?: Parameters<typeof makeAgent>[0]['config']; before?: (domid: number) => Promise<void> } = {}) {
    const domid = nextDomid++;
    await introduceGuest(peer.daemon, peer.dom0, domid);
    await opts.before?.(domid);
    const proc = new ScriptedProc(opts.fixture ?? 'guest-5.10-swap');
    const clock = new FakeClock();
    const rig: AgentRig = makeAgent({ clock, connect: guestConnect(peer.daemon, domid), procRoot: proc.root, ...(opts.sys === false ? {} : { sysRoot: XEN_SYS }), ...(opts.config ? { config: opts.config } : {}) });
    const published: Published[] = [];
    rig.agent.on('published', (p: Published) => published.push(p));
    peer.cleanups.push(() => proc.dispose(), () => rig.stop());
    const settle = () => rig.agent.whenIdle();
    const advanceTo = (t: number) => clock.advanceTo(t, settle);
    const key = async () => {
      const raw = await peer.dom0.tryRead(`/local/domain/${domid}/data/xmem`);
      if (raw === null) return null;
      const r = parseGuestReport(raw);
      if (!r.ok) throw new Error(r.error);
      return r.value;
    };
    rig.agent.start();
    await advanceTo(0);
    return { domid, proc, clock, rig, published, advanceTo, key, reasons: () => published.map((p) => `${p.at}:${p.reason}`) };
  }

  it('writes on start, then only on a used change beyond 30 MB, plus the 60 s heartbeat', async () => {
    const s = await setup({ fixture: 'host-6.18-noswap', sys: false }); // 24 GiB, ~2 % used: full threshold
    expect(s.reasons()).toEqual(['0:first']);
    const free = s.proc.meminfo('MemFree');
    s.proc.setMeminfo('MemFree', free - 29_000); // used +29 000 KiB: below the threshold
    await s.advanceTo(10_000);
    expect(s.reasons()).toEqual(['0:first']);
    s.proc.setMeminfo('MemFree', free - 31_000); // +31 000 KiB from the last report
    await s.advanceTo(11_500);
    expect(s.reasons()).toEqual(['0:first', '11000:memory']);
    expect((await s.key())!.free).toBe(free - 31_000);
    await s.advanceTo(80_000);
    expect(s.reasons()).toEqual(['0:first', '11000:memory', '71000:heartbeat']);
    const last = await s.key();
    expect(last!.seq).toBe(3);
  });

  it('uses half the threshold for growth above ~77 % utilisation', async () => {
    const s = await setup();
    // Make the guest busy: used ≈ 85 % of the balloon size (1 GiB).
    const cached = s.proc.meminfo('Cached');
    const buffers = s.proc.meminfo('Buffers');
    const swapUsed = s.proc.meminfo('SwapTotal') - s.proc.meminfo('SwapFree');
    const busyFree = Math.round(1048576 * 0.15) - cached - buffers + swapUsed;
    s.proc.setMeminfo('MemFree', busyFree);
    await s.advanceTo(1500);
    expect(s.reasons()).toEqual(['0:first', '1000:memory']);
    s.proc.setMeminfo('MemFree', busyFree - 16_000); // +16 MB growth: > 15 000 KiB
    await s.advanceTo(2500);
    expect(s.reasons()).toEqual(['0:first', '1000:memory', '2000:memory']);
    s.proc.setMeminfo('MemFree', busyFree); // −16 MB: shrinking needs the full threshold
    await s.advanceTo(5500);
    expect(s.reasons()).toHaveLength(3);
  });

  it('gets a stall into xenstore within one stall poll (≤ 100 ms of virtual time), PSI reports at ≤ 1 Hz', async () => {
    const s = await setup();
    s.proc.setPsi({ avg10: 23.41, avg60: 11.02, avg300: 3.87, total: 48_213_390 }); // unchanged: the fixture's
    await s.advanceTo(5_000);
    expect(s.reasons()).toEqual(['0:first']);
    s.proc.setPsi({ avg10: 23.41, avg60: 11.02, avg300: 3.87, total: 48_263_390 }); // +50 ms of stall at t=5000
    await s.advanceTo(5_100);
    expect(s.reasons()).toEqual(['0:first', '5100:stall']);
    expect((await s.key())!.psi!.stot).toBe(48_263_390);
    s.proc.setPsi({ avg10: 25, avg60: 11.5, avg300: 3.9, total: 48_300_000 });
    await s.advanceTo(6_200);
    expect(s.reasons()).toEqual(['0:first', '5100:stall', '6100:stall']);
  });

  it('after a stall, reports the decay of the averages at the computed time', async () => {
    const s = await setup();
    const due = s.rig.agent['planner'].decayDueAt as number; // 23.41 → below 11.705
    expect(due).toBeGreaterThan(0);
    s.proc.setPsi({ avg10: 11.5, avg60: 9.9, avg300: 3.8, total: 48_213_390 });
    await s.advanceTo(due - 200);
    expect(s.reasons()).toEqual(['0:first']);
    await s.advanceTo(due + 150);
    expect(s.reasons()).toHaveLength(2);
    expect(s.published[1]).toMatchObject({ reason: 'decay' });
    expect(s.published[1]!.at - due).toBeLessThanOrEqual(100);
    expect((await s.key())!.psi!.s10).toBe(11.5);
  });

  it('writes memory/meminfo only where dom0 created it writable, and only on a real change', async () => {
    // Qubes-managed: dom0 creates memory/meminfo owned by the guest.
    const q = await setup({
      before: async (domid) => {
        await peer.dom0.write(`/local/domain/${domid}/memory/meminfo`, '');
        await peer.dom0.setPerms(`/local/domain/${domid}/memory/meminfo`, [{ domid, access: 'n' }]);
      },
    });
    const first = (await q.key())!;
    expect(await peer.dom0.read(`/local/domain/${q.domid}/memory/meminfo`)).toBe(String(qubesUsedKib(first)));
    expect(q.rig.agent.qubesStatus).toBe('active');
    // Not Qubes-managed: the key does not exist and the guest cannot create it.
    const x = await setup();
    expect(x.rig.agent.qubesStatus).toBe('absent');
    expect(await peer.dom0.tryRead(`/local/domain/${x.domid}/memory/meminfo`)).toBeNull();
    expect(x.rig.logs).toContain('memory/meminfo absent: not writing the Qubes number');
  });

  it('tries a read-only memory/meminfo once, logs once, and does not retry it every report', async () => {
    let writes = 0;
    const s = await setup({
      fixture: 'host-6.18-noswap',
      sys: false,
      before: async (domid) => {
        await peer.dom0.write(`/local/domain/${domid}/memory/meminfo`, '0');
        await peer.dom0.setPerms(`/local/domain/${domid}/memory/meminfo`, [{ domid: 0, access: 'n' }, { domid, access: 'r' }]);
      },
    });
    expect(s.rig.agent.qubesStatus).toBe('denied');
    // Count further attempts on the real connection from here on.
    const xs = s.rig.agent['xs'] as { write: (p: string, v: string) => Promise<void> };
    const real = xs.write.bind(xs);
    xs.write = (p: string, v: string) => {
      if (p === 'memory/meminfo') writes++;
      return real(p, v);
    };
    let free = s.proc.meminfo('MemFree');
    for (let t = 1000; t <= 20_000; t += 1000) {
      free -= 40_000;
      s.proc.setMeminfo('MemFree', free);
      await s.advanceTo(t + 10);
    }
    expect(s.published.length).toBeGreaterThanOrEqual(15);
    expect(writes).toBe(0);
    expect(await peer.dom0.read(`/local/domain/${s.domid}/memory/meminfo`)).toBe('0');
    expect(s.rig.logs.filter((l) => l.includes('memory/meminfo'))).toEqual(['memory/meminfo not writable (EACCES): not writing the Qubes number']);
    // The heartbeat re-probes (dom0 may have fixed the permissions meanwhile).
    await peer.dom0.setPerms(`/local/domain/${s.domid}/memory/meminfo`, [{ domid: s.domid, access: 'n' }]);
    await s.advanceTo(s.published.at(-1)!.at + 60_050);
    expect(s.published.at(-1)!.reason).toBe('heartbeat');
    expect(s.rig.agent.qubesStatus).toBe('active');
    expect(writes).toBe(1);
  });

  it('survives EACCES on data/: one log line, backoff, recovery when dom0 fixes it', async () => {
    const s = await setup({
      before: async (domid) => {
        await peer.dom0.setPerms(`/local/domain/${domid}/data`, [{ domid: 0, access: 'n' }, { domid, access: 'r' }]);
      },
    });
    expect(s.published).toEqual([]);
    await s.advanceTo(10_000);
    expect(s.published).toEqual([]);
    const errors = s.rig.logs.filter((l) => l.includes('cannot write data/xmem'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/EACCES; retrying with backoff/);
    await peer.dom0.setPerms(`/local/domain/${s.domid}/data`, [{ domid: s.domid, access: 'n' }]);
    await s.advanceTo(30_000);
    expect(s.published.map((p) => p.reason)).toEqual(['retry']);
    expect(s.rig.logs.filter((l) => /writing data\/xmem after \d+ failed attempt/.test(l))).toHaveLength(1);
    expect((await s.key())!.seq).toBe(1);
  });

  it('survives ENOSPC (guest over its node quota) the same way', async () => {
    const s = await setup({
      before: async (domid) => {
        // Fill the guest's entry quota (1000 by default) with nodes it owns.
        await peer.dom0.transaction(async (tx) => {
          for (let i = 0; i < 1000; i++) {
            await peer.dom0.write(`/local/domain/${domid}/data/fill/n${i}`, 'x', tx);
            await peer.dom0.setPerms(`/local/domain/${domid}/data/fill/n${i}`, [{ domid, access: 'n' }], tx);
          }
        });
      },
    });
    const errors = s.rig.logs.filter((l) => l.includes('cannot write data/xmem'));
    expect(errors).toEqual([expect.stringMatching(/ENOSPC; retrying/)]);
    await peer.dom0.rm(`/local/domain/${s.domid}/data/fill`);
    await s.advanceTo(5_000);
    expect(s.published.map((p) => p.reason)).toEqual(['retry']);
  });
});
