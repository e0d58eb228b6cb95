import { describe, expect, it } from 'vitest';
import { Admission } from '../../dom0/admission/admission.js';
import { ReservationBook } from '../../dom0/admission/book.js';
import { RateWindow, QMEMMAN_RATE } from '../../dom0/admission/rate.js';
import { FakeManager } from './fake-manager.js';
import { GiB, MiB, type VmSpec } from './helpers.js';
import { VirtualClock } from './vclock.js';

function rig(vms: (VmSpec & { kibPerPass?: number })[], freeKib: number, timeoutMs = 60_000) {
  const clock = new VirtualClock();
  const book = new ReservationBook({ clock, timeoutMs });
  const manager = new FakeManager(vms, freeKib, book.reservations, 64 * MiB, () => new Map(), () => clock.now());
  book.attach(() => manager.lastSnapshot());
  const logs: { level: string; obj: object; msg?: string }[] = [];
  const logger = {
    info: (obj: object, msg?: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => logs.push({ level: 'warn', obj, msg }),
  };
  const admission = new Admission(manager, book, { clock, reserveKib: 64 * MiB, logger, wallNow: () => 42 });
  return { clock, book, manager, admission, logs };
}

const work: VmSpec = { domid: 1, name: 'work', actualKib: 4 * GiB, floorKib: 1 * GiB };
const personal: VmSpec = { domid: 2, name: 'personal', actualKib: 2 * GiB, floorKib: 1536 * MiB };

describe('rate window (qmemman: 100 MiB/s over 3 s)', () => {
  it('is not judged before a full period, and fails below 300 MiB per 3 s', () => {
    const w = new RateWindow(QMEMMAN_RATE);
    w.add({ atMs: 0, kib: 0 });
    w.add({ atMs: 2900, kib: 0 });
    expect(w.tooSlow()).toBe(false);
    w.add({ atMs: 3000, kib: 299 * MiB });
    expect(w.tooSlow()).toBe(true);
    const ok = new RateWindow(QMEMMAN_RATE);
    ok.add({ atMs: 0, kib: 0 });
    ok.add({ atMs: 3000, kib: 300 * MiB });
    expect(ok.tooSlow()).toBe(false);
  });

  it('slides: a burst long ago does not excuse a stall now', () => {
    const w = new RateWindow(QMEMMAN_RATE);
    w.add({ atMs: 0, kib: 0 });
    w.add({ atMs: 1000, kib: 2 * GiB });
    for (let t = 1100; t <= 4500; t += 100) w.add({ atMs: t, kib: 2 * GiB });
    expect(w.tooSlow()).toBe(true);
  });
});

describe('admission (fake manager, virtual clock)', () => {
  it('fits at once: held immediately, fed to the manager as used memory', async () => {
    const { admission, book } = rig([work], 2 * GiB);
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.how).toBe('fits-now');
    expect(d.waitedMs).toBe(0);
    expect(book.reservations()).toEqual([{ id: d.id, forName: 'new', kib: 1 * GiB }]);
    expect(book.get(d.id)?.state).toBe('held');
  });

  it('fits after squeezing: donors end at or above their floors; waits until free covers it', async () => {
    const { admission, manager } = rig([{ ...work, kibPerPass: 256 * MiB }, { ...personal, kibPerPass: 256 * MiB }], 64 * MiB);
    const d = await admission.reserve({ forName: 'new', kib: 2 * GiB });
    if (!d.ok) throw new Error(d.message);
    expect(d.how).toBe('squeezed');
    expect(d.waitedMs).toBeGreaterThan(0);
    expect(manager.freeKib).toBeGreaterThanOrEqual(2 * GiB + 25 * MiB);
    for (const v of manager.specs) expect(v.actualKib).toBeGreaterThanOrEqual(v.floorKib);
    expect(d.donors.map((x) => x.name).sort()).toEqual(['personal', 'work']);
    expect(d.message).toMatch(/^reserved 2 GiB for new \(after freeing .* from work .*, personal .*\)$/);
  });

  it('refuses below the floors at once, records the refusal, reserves nothing', async () => {
    const { admission, book, manager, clock } = rig([work, personal], 64 * MiB);
    const d = await admission.reserve({ forName: 'big', kib: 5 * GiB });
    expect(d.ok).toBe(false);
    if (d.ok) return;
    expect(d.kind).toBe('below-floors');
    expect(d.refusal?.missingKib).toBe(5 * GiB - 3 * GiB - 512 * MiB);
    expect(d.message).toContain('shut down');
    expect(clock.now()).toBe(0);
    expect(manager.passes).toBe(1); // one pass, for fresh facts
    expect(book.list()).toEqual([]);
    expect(book.refusals()).toEqual([{ atMs: 42, forName: 'big', neededKib: 5 * GiB, reason: d.message }]);
  });

  it('a stuck donor: fails after ~3 s (not at the hard bound) and names it', async () => {
    const { admission, book, clock } = rig([{ ...work, kibPerPass: 0 }, { ...personal, kibPerPass: 64 * MiB }], 64 * MiB);
    const d = await admission.reserve({ forName: 'new', kib: 2 * GiB });
    if (d.ok) throw new Error('expected a refusal');
    expect(d.kind).toBe('stalled');
    expect(d.stuck).toEqual(['work']);
    expect(d.message).toMatch(/work did not give memory back/);
    expect(clock.now()).toBeGreaterThanOrEqual(3000);
    expect(clock.now()).toBeLessThan(4000);
    expect(book.list()).toEqual([]);
  });

  it('growth is held from a request\'s turn until it is answered: before its reservation is booked, released on a refusal too', async () => {
    const { admission, book, manager } = rig([{ ...work, kibPerPass: 256 * MiB }, personal], 64 * MiB);
    book.on('change', () => manager.holdLog.push(`book ${book.list().map((r) => `${r.forName}:${r.state}`).join(',')}`));
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    if (!d.ok) throw new Error(d.message);
    expect(manager.holdLog).toEqual(['hold new', 'book new:squeezing', 'book new:held', 'release new']);
    manager.holdLog.length = 0;
    const big = await admission.reserve({ forName: 'big', kib: 8 * GiB });
    expect(big.ok).toBe(false);
    expect(manager.holdLog).toEqual(['hold big', 'book new:held', 'release big']); // the refusal's record
    manager.holdLog.length = 0;
    const gone = await admission.reserve({ forName: 'gone', kib: 1 * GiB, cancelled: () => true });
    expect(gone.ok).toBe(false);
    expect(manager.holdLog).toEqual([]); // never had its turn
  });

  it('two concurrent requests are serialized: the second sees the first reservation', async () => {
    const { admission, book } = rig([{ ...work, kibPerPass: 512 * MiB }], 2 * GiB);
    const [a, b] = await Promise.all([
      admission.reserve({ forName: 'a', kib: 1536 * MiB }),
      admission.reserve({ forName: 'b', kib: 1536 * MiB }),
    ]);
    if (!a.ok || !b.ok) throw new Error('both should fit');
    expect(a.how).toBe('fits-now');
    // Only 2 GiB − 64 MiB − 1.5 GiB was left for b: it had to squeeze.
    expect(b.how).toBe('squeezed');
    expect(book.reservations().map((r) => r.forName)).toEqual(['a', 'b']);
  });

  it('timeout: a held reservation expires and gives its memory back to balancing', async () => {
    const { admission, book, clock, logs } = rig([work], 4 * GiB, 10_000);
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    if (!d.ok) throw new Error(d.message);
    clock.advance(9_999);
    expect(book.list()).toHaveLength(1);
    clock.advance(1);
    expect(book.list()).toEqual([]);
    expect(logs.some((l) => l.msg === 'reservation held')).toBe(true);
  });

  it('release: frees the reservation once, and asks for a pass', async () => {
    const { admission, book, manager } = rig([work], 4 * GiB);
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    if (!d.ok) throw new Error(d.message);
    const before = manager.passes;
    expect(admission.release(d.id)).toBe(true);
    expect(admission.release(d.id)).toBe(false);
    expect(book.list()).toEqual([]);
    expect(manager.passes).toBe(before + 1);
  });

  it('a started VM takes its reservation over (no double counting)', async () => {
    const { admission, book, manager } = rig([work], 4 * GiB);
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    if (!d.ok) throw new Error(d.message);
    manager.startDomain({ domid: 7, name: 'new', actualKib: 768 * MiB, floorKib: 0 });
    expect(book.reservations()).toEqual([{ id: d.id, forName: 'new', kib: 256 * MiB }]);
  });

  it('plans on facts read after the request: memory taken behind its back since the last pass counts', async () => {
    const { admission, manager } = rig([{ ...work, kibPerPass: 512 * MiB }], 4 * GiB);
    manager.freeKib = 64 * MiB; // a VM started outside xmem; the last snapshot still says 4 GiB free
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    if (!d.ok) throw new Error(d.message);
    expect(d.how).toBe('squeezed');
  });

  it('refuses as not-ready when the manager produces no pass in time', async () => {
    const { admission, manager, clock } = rig([work], 4 * GiB);
    manager.requestPass = () => {};
    manager.snapshot = { ...manager.snapshot!, nowMs: -1 };
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    expect(d).toMatchObject({ ok: false, kind: 'not-ready' });
    expect(clock.now()).toBeGreaterThanOrEqual(5000);
  });

  it('an unnamed (qmemman.sock) reservation is taken over by any domain created after it', async () => {
    const { admission, book, manager } = rig([work], 4 * GiB);
    const d = await admission.reserve({ forName: 'qmemman-1', kib: 1 * GiB, anyNewDomain: true });
    if (!d.ok) throw new Error(d.message);
    manager.startDomain({ domid: 9, name: 'whatever', actualKib: 1 * GiB, floorKib: 0 });
    expect(book.reservations()).toEqual([{ id: d.id, forName: 'qmemman-1', kib: 0 }]);
  });

  it('a named reservation is not taken over by some other new domain', async () => {
    const { admission, book, manager } = rig([work], 4 * GiB);
    const d = await admission.reserve({ forName: 'new', kib: 1 * GiB });
    if (!d.ok) throw new Error(d.message);
    manager.startDomain({ domid: 9, name: 'other', actualKib: 1 * GiB, floorKib: 0 });
    expect(book.reservations()).toEqual([{ id: d.id, forName: 'new', kib: 1 * GiB }]);
  });

  it('a cancelled request (client gone) is dropped without a refusal record', async () => {
    const { admission, book } = rig([{ ...work, kibPerPass: 1 * MiB }], 64 * MiB);
    let gone = false;
    const p = admission.reserve({ forName: 'new', kib: 2 * GiB, cancelled: () => gone });
    gone = true;
    const d = await p;
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.kind).toBe('cancelled');
    expect(book.list()).toEqual([]);
    expect(book.refusals()).toEqual([]);
  });
});
