import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGuestReport, qubesUsedKib, type GuestReport } from '../../src/schemas/report.js';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import { peerSkipReason, startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { FakeClock } from './fake-clock.js';
import { guestConnect, introduceGuest, makeAgent, procFixture, XEN_SYS } from './rig.js';

/**
 * What the agent publishes, as an unprivileged domU on the real C xenstored, read back by dom0
 * and checked with the manager's own parser against an independent grep of the same /proc text.
 */
const skip = peerSkipReason();
if (skip) console.warn(`SKIP test/agent/report.test.ts: real C xenstored unavailable (${skip})`);

function grep(text: string, key: string): number {
  const m = new RegExp(`^${key.replace(/[()]/g, '\\$&')}:?\\s+(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`no ${key}`);
  return Number(m[1]);
}

describe.skipIf(skip !== null)('agent report content (real C xenstored, guest ring)', () => {
  let daemon: PeerDaemon;
  let dom0: XenstoreConnection;
  let nextDomid = 10;

  beforeAll(async () => {
    daemon = await startXenstored({ impl: 'c' });
    dom0 = await connectXenstore({ path: daemon.socketPath });
  });
  afterAll(async () => {
    await dom0?.close();
    await daemon?.stop();
  });

  /** Runs one agent on `procRoot` until its first report and returns what dom0 reads back. */
  async function firstReport(procRoot: string, sysRoot?: string): Promise<{ raw: string; report: GuestReport; domid: number }> {
    const domid = nextDomid++;
    await introduceGuest(daemon, dom0, domid);
    const clock = new FakeClock();
    const rig = makeAgent({ clock, connect: guestConnect(daemon, domid), procRoot, ...(sysRoot ? { sysRoot } : {}) });
    rig.agent.start();
    await clock.advance(0, () => rig.agent.whenIdle());
    await rig.stop();
    const raw = await dom0.read(`/local/domain/${domid}/data/xmem`);
    const parsed = parseGuestReport(raw);
    if (!parsed.ok) throw new Error(parsed.error);
    expect(rig.logs.filter((l) => /cannot|error/.test(l))).toEqual([]);
    return { raw, report: parsed.value, domid };
  }

  it.each(['host-6.18-noswap', 'host-6.18-pressure', 'guest-5.10-swap', 'guest-4.19-nopsi'])('publishes %s field for field', async (name) => {
    const { raw, report } = await firstReport(procFixture(name), XEN_SYS);
    const mi = readFileSync(path.join(procFixture(name), 'meminfo'), 'latin1');
    const vm = readFileSync(path.join(procFixture(name), 'vmstat'), 'latin1');
    expect(raw.length).toBeLessThan(1024);
    expect(report).toMatchObject({
      v: 1, seq: 1,
      total: grep(mi, 'MemTotal'), free: grep(mi, 'MemFree'), avail: grep(mi, 'MemAvailable'),
      buf: grep(mi, 'Buffers'), cache: grep(mi, 'Cached'), afile: grep(mi, 'Active(file)'), ifile: grep(mi, 'Inactive(file)'),
      shmem: grep(mi, 'Shmem'), srec: grep(mi, 'SReclaimable'), sunrec: grep(mi, 'SUnreclaim'), anon: grep(mi, 'AnonPages'),
      mlock: grep(mi, 'Mlocked'), swtot: grep(mi, 'SwapTotal'), swfree: grep(mi, 'SwapFree'), commit: grep(mi, 'Committed_AS'),
      bcur: 1048576, btgt: 1048576,
      swin: grep(vm, 'pswpin'), swout: grep(vm, 'pswpout'),
    });
    const up = readFileSync(path.join(procFixture(name), 'uptime'), 'latin1');
    expect(report.up).toBe(Math.round(Number(up.split(' ')[0]) * 1000));
    if (name === 'guest-4.19-nopsi') {
      expect(report.psi).toBeNull();
      expect(report.rff).toBe(grep(vm, 'workingset_refault'));
      expect(report.rfa).toBe(0);
    } else {
      const psi = readFileSync(path.join(procFixture(name), 'pressure/memory'), 'latin1');
      const some = /^some avg10=([\d.]+) avg60=([\d.]+) avg300=([\d.]+) total=(\d+)/m.exec(psi)!;
      expect(report.psi).toMatchObject({ s10: Number(some[1]), s60: Number(some[2]), s300: Number(some[3]), stot: Number(some[4]) });
      expect(report.rff).toBe(grep(vm, 'workingset_refault_file'));
      expect(report.rfa).toBe(grep(vm, 'workingset_refault_anon'));
    }
  });

  it('reports balloon fields as null outside a Xen guest', async () => {
    const { report } = await firstReport(procFixture('guest-5.10-swap'));
    expect(report.bcur).toBeNull();
    expect(report.btgt).toBeNull();
  });

  it('publishes this machine\'s real /proc', async () => {
    const { report } = await firstReport('/proc', '/sys');
    const mi = readFileSync('/proc/meminfo', 'latin1');
    expect(report.total).toBe(grep(mi, 'MemTotal'));
    expect(report.swtot).toBe(grep(mi, 'SwapTotal'));
    expect(Math.abs(report.up - os.uptime() * 1000)).toBeLessThan(5000);
    const hasPsi = (() => {
      try {
        readFileSync('/proc/pressure/memory');
        return true;
      } catch {
        return false;
      }
    })();
    expect(report.psi === null).toBe(!hasPsi);
  });

  it('the Qubes number from a report matches meminfo-writer\'s formula on the raw text', async () => {
    const { report } = await firstReport(procFixture('guest-5.10-swap'), XEN_SYS);
    const mi = readFileSync(path.join(procFixture('guest-5.10-swap'), 'meminfo'), 'latin1');
    // meminfo-writer: MemTotal := current_kb; used = MemTotal - Buffers - Cached - MemFree + SwapTotal - SwapFree
    const expected = 1048576 - grep(mi, 'Buffers') - grep(mi, 'Cached') - grep(mi, 'MemFree') + grep(mi, 'SwapTotal') - grep(mi, 'SwapFree');
    expect(qubesUsedKib(report)).toBe(expected);
  });
});
