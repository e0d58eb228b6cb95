import { describe, expect, it } from 'vitest';
import { decide } from '../../src/policy/index.js';
import { prefMem, qmemmanBalance, type QmemmanConstants, type QmemmanDom } from '../../src/policy/qmemman.js';
import { EMPTY_HISTORY } from '../../src/policy/types.js';
import { G, M, cfg, host, vm, xmemReport } from './helpers.js';
import { qubesUsedKib } from '../../src/schemas/report.js';

/** qmemman's MB(): bytes, truncated. */
const MB = (v: number) => Math.trunc(v * 1024 * 1024);
const C: QmemmanConstants = { cacheFactor: 1.3, minPrefmem: 200 * 1024 * 1024, dom0Boost: 350 * 1024 * 1024 };

function dom(id: string, used: number | null, max: number, actual: number): QmemmanDom {
  const v = vm(Number(id), { actualKib: actual / 1024 });
  return { vm: { ...v, name: id }, isDom0: id === '0', memUsed: used, memCurrent: actual, lastTarget: 0, memActual: actual, memMax: max, noProgress: false, minPref: 0 };
}

/** The six domains of qmemman's own balance tests (qubes/tests/qmemman.py). */
function qubesTestDomains(first: { actual: number }): QmemmanDom[] {
  return [
    dom('0', MB(1024), MB(4096), first.actual),
    dom('1', MB(1024), MB(4096), MB(1536)),
    dom('2', MB(4096), MB(4096), MB(4096)), // at maxmem
    dom('3', null, MB(4096), MB(4096)), // no meminfo
    dom('4', MB(1536), MB(4096), MB(1536)), // at prefmem, can get more
    dom('5', MB(512), MB(1024), MB(768)), // low maxmem
  ];
}

describe('qmemman pref (algo.pref_mem)', () => {
  it('dom0: 1.3 × used + 350 MiB, capped at maxmem, no 200 MiB floor', () => {
    expect(prefMem(dom('0', MB(1024), MB(4096), 0), C)).toBe(MB(1681.2));
    expect(prefMem(dom('0', MB(5000), MB(4096), 0), C)).toBe(MB(4096));
    expect(prefMem(dom('0', MB(10), MB(4096), 0), C)).toBe(Math.trunc(MB(10) * 1.3 + MB(350)));
  });
  it('domU: max(min(1.3 × used, maxmem), 200 MiB)', () => {
    expect(prefMem(dom('10', MB(1024), MB(4096), 0), C)).toBe(MB(1331.2));
    expect(prefMem(dom('10', MB(5000), MB(4096), 0), C)).toBe(MB(4096));
    expect(prefMem(dom('10', MB(100), MB(4096), 0), C)).toBe(MB(200));
  });
});

describe('qmemman balance: golden values from qmemman\'s test suite', () => {
  it('enough memory: every target exactly as qmemman computes it (test_200)', () => {
    const doms = qubesTestDomains({ actual: MB(1736) });
    // That test calls balance_when_enough_mem with total_available_mem = 4096 MiB; through
    // balance() that is xen_free = 4096 MiB + Σ need.
    const needSum = doms.filter((d) => d.memUsed !== null).reduce((s, d) => s + prefMem(d, C) - d.memActual, 0);
    const { requests } = qmemmanBalance(MB(4096) + needSum, doms, C);
    expect(requests.map((r) => [r.dom.vm.name, r.target])).toEqual([
      ['0', 3068708976],
      ['1', 2548378128],
      ['2', 4294967296],
      ['4', 3537898734],
      ['5', 1073741824],
    ]);
  });

  it('low on memory: donors to pref, acceptors wait (the sign quirk) (test_250)', () => {
    const doms = qubesTestDomains({ actual: MB(768) });
    const { requests, skipped } = qmemmanBalance(MB(50), doms, C);
    expect(requests.map((r) => [r.dom.vm.name, r.target])).toEqual([
      ['1', 1395864371],
      ['5', 697932185],
    ]);
    // The acceptors (0 and 4) get nothing this pass: donors' surplus exceeds free memory.
    expect([...skipped.keys()].map((d) => d.vm.name).sort()).toEqual(['0', '2', '4']);
  });

  it('low on memory with enough free memory to cover donors: acceptors share the rest ∝ pref', () => {
    // dom 1 is a donor of 1536 − 1331.2 MiB; dom 0 (dom0) needs 1681.2 − 768; totals negative.
    const doms = [dom('0', MB(1024), MB(4096), MB(768)), dom('1', MB(1024), MB(4096), MB(1536))];
    const xenFree = MB(400);
    const avail1 = MB(1536) - MB(1331.2);
    const squeezed = xenFree - avail1;
    const { requests } = qmemmanBalance(xenFree, doms, C);
    expect(requests.map((r) => [r.dom.vm.name, r.target])).toEqual([
      ['1', MB(1331.2)],
      ['0', Math.min(Math.trunc(0.999 * (MB(768) + 1.0 * squeezed)), MB(4096))],
    ]);
  });
});

describe('policy: qmemman through decide()', () => {
  const q = cfg({ policy: 'qmemman' });
  const qubes = (usedKib: number) => ({ kind: 'qubes' as const, usedKib, ageMs: 0 });

  it('hand-computed enough-memory pass: targets, maxmem = target + 1 MiB, donors first', () => {
    const snap = host(
      [
        vm(0, { actualKib: 2 * G, staticMaxKib: 4 * G, signal: qubes(1 * G) }),
        vm(1, { actualKib: 1 * G, staticMaxKib: 4 * G, signal: qubes(512 * M) }),
      ],
      { freeKib: 4 * G },
    );
    // Bytes, step by step as qmemman does it (last_target = the target in force = actual).
    const xenfree = Math.trunc(4 * G * 1024 * (1.0 / 1.00781));
    const pref0 = Math.trunc(Math.min(1 * G * 1024 * 1.3 + 350 * 1024 * 1024, 4 * G * 1024)); // 1762865971
    const pref1 = Math.trunc(Math.max(Math.min(512 * M * 1024 * 1.3, 4 * G * 1024), 200 * 1024 * 1024)); // 697932185
    expect([pref0, pref1]).toEqual([1762865971, 697932185]);
    const need = pref0 - 2 * G * 1024 + (pref1 - 1 * G * 1024);
    const available = xenfree - 50 * 1024 * 1024 - need;
    const t0 = Math.trunc(0.999 * (pref0 + (pref0 / (pref0 + pref1)) * available));
    const t1 = Math.trunc(0.999 * (pref1 + (pref1 / (pref0 + pref1)) * available));
    const r = decide(snap, q);
    const byName = Object.fromEntries(r.decisions.map((d) => [d.name, d]));
    // dom0's share overflows its 4 GiB maxmem; the excess goes to the one acceptor left.
    const max = 4 * G * 1024;
    expect(t0).toBeGreaterThan(max);
    const t1Spread = t1 + Math.trunc(0.999 * ((t0 - max) / 1));
    expect(byName.dom0!.targetKib).toBe(Math.trunc(max / 1024));
    expect(byName.vm1!.targetKib).toBe(Math.trunc(Math.min(t1Spread, max) / 1024));
    expect(byName.dom0!.maxmemKib).toBe(byName.dom0!.targetKib + 1024);
    expect(byName.vm1!.floorKib).toBe(Math.trunc(pref1 / 1024));
    expect(r.decisions[0]!.change === 'shrink' || r.decisions.every((d) => d.change !== 'shrink')).toBe(true);
    expect(r.history[1]!.lastTargetKib).toBe(byName.vm1!.targetKib);
    expect(r.summary).toMatch(/enough memory/);
  });

  it('insignificant changes are not applied (150 MiB total / 50 MiB free anchors)', () => {
    // Everyone already sits where the previous pass put them; the new pass moves < 150 MiB.
    const snap = host([vm(1, { actualKib: 1 * G, staticMaxKib: 4 * G, signal: qubes(700 * M) })], { freeKib: 150 * M });
    const first = decide(snap, q);
    const t = first.decisions[0]!.targetKib;
    const settled = host(
      [vm(1, { actualKib: t, targetKib: t, staticMaxKib: 4 * G, signal: qubes(720 * M), history: first.history[1]! })],
      { freeKib: 150 * M - (t - 1 * G) },
    );
    const second = decide(settled, q);
    expect(second.decisions[0]!.change).toBe('hold');
    expect(second.decisions[0]!.targetKib).toBe(t);
    expect(second.summary).toMatch(/holding/);
  });

  it('derives used from an xmem report exactly as meminfo-writer would', () => {
    const report = xmemReport({ allocation: 2 * G, commit: 1 * G, unrec: 700 * M });
    const a = decide(host([vm(1, { actualKib: 2 * G, signal: { kind: 'xmem', report, ageMs: 0 } })]), q);
    const b = decide(host([vm(1, { actualKib: 2 * G, signal: qubes(qubesUsedKib(report)) })]), q);
    expect(a.decisions[0]!.targetKib).toBe(b.decisions[0]!.targetKib);
    expect(a.decisions[0]!.floorKib).toBe(b.decisions[0]!.floorKib);
  });

  it('VMs without meminfo, paused or stuck are held at their target; qmemman.conf keys apply', () => {
    const snap = host([
      vm(1, { actualKib: 1 * G, signal: qubes(300 * M) }),
      vm(2, { actualKib: 3 * G, targetKib: 2 * G, paused: true, signal: qubes(100 * M) }),
      vm(3, { actualKib: 2 * G, stuck: true, signal: qubes(100 * M) }),
      vm(4, { actualKib: 2 * G }),
    ]);
    const r = decide(snap, q);
    const d = Object.fromEntries(r.decisions.map((x) => [x.name, x]));
    expect(d.vm2).toMatchObject({ targetKib: 2 * G, managed: false, change: 'hold' });
    expect(d.vm3).toMatchObject({ targetKib: 2 * G, managed: false });
    expect(d.vm4).toMatchObject({ targetKib: 2 * G, managed: false });
    expect(d.vm1!.managed).toBe(true);
    // vm-min-mem from qmemman.conf: 200M means 200 000 000 bytes there.
    const custom = decide(host([vm(1, { actualKib: 1 * G, signal: qubes(10 * M) })]), cfg({ policy: 'qmemman', qmemman: { 'vm-min-mem': '300M' } }));
    expect(custom.decisions[0]!.floorKib).toBe(Math.trunc(300_000_000 / 1024));
  });

  it('never hands out reservations: a reservation turns an enough pass into low memory', () => {
    const vms = [vm(1, { actualKib: 2 * G, signal: qubes(1 * G) }), vm(2, { actualKib: 1 * G, signal: qubes(100 * M) })];
    const free = decide(host(vms, { freeKib: 1 * G }), q);
    const reserved = decide(host(vms, { freeKib: 1 * G, reservations: [{ id: 'r', forName: 'new', kib: 3 * G }] }), q);
    expect(free.summary).toMatch(/enough memory/);
    expect(reserved.summary).toMatch(/low on memory/);
    // Low on memory: both are donors and go exactly to their pref.
    const t = Object.fromEntries(reserved.decisions.map((d) => [d.name, d.targetKib]));
    expect(t.vm1).toBe(Math.trunc(Math.trunc(1 * G * 1024 * 1.3) / 1024));
    expect(t.vm2).toBe(200 * M);
  });

  it('an admin min above what Xen lets a VM hold raises its pref only to that ceiling', () => {
    // vm2 cannot hold more than 64 MiB; a pref of 1.6 GiB made the host look short and sent
    // vm1 between 200 MiB (donor) and 1.7 GiB (acceptor) on every pass.
    const vms = [
      vm(1, { actualKib: 4 * G, signal: qubes(0) }),
      vm(2, { actualKib: 64 * M, staticMaxKib: 64 * M, override: { minKib: 1600 * M }, signal: qubes(0) }),
    ];
    let snap = host(vms, { freeKib: 0 });
    const trail: number[] = [];
    for (let pass = 0; pass < 6; pass++) {
      const r = decide(snap, q);
      const t = new Map(r.decisions.map((d) => [d.domid, d.targetKib]));
      // qmemman's own 200 MiB vm-min-mem still applies above a small maxmem, as in qmemman
      expect(r.decisions.find((d) => d.domid === 2)!.idealKib).toBeLessThanOrEqual(200 * M);
      trail.push(t.get(1)!);
      const freed = snap.vms.reduce((a, v) => a + v.actualKib - t.get(v.domid)!, 0);
      snap = { ...snap, freeKib: snap.freeKib + freed, vms: snap.vms.map((v) => ({ ...v, actualKib: t.get(v.domid)!, targetKib: t.get(v.domid)!, history: r.history[v.domid]! })) };
    }
    expect(trail.slice(2)).toEqual([trail[2], trail[2], trail[2], trail[2]]);
  });

  it('history carries last_target: mem_actual = max(allocation, last target)', () => {
    // A VM that was given 3 GiB but still has 1 GiB counts as 3 GiB.
    const base = vm(1, { actualKib: 1 * G, targetKib: 3 * G, signal: qubes(500 * M), history: { ...EMPTY_HISTORY, lastTargetKib: 3 * G } });
    const r = decide(host([base], { freeKib: 0 }), q);
    // xenfree = 0 − 2 GiB assigned-but-unused; need = pref − 3 GiB; available = xenfree −
    // 50 MiB − need > 0, so it is an enough pass around the 3 GiB it counts as having.
    const pref = Math.trunc(Math.max(500 * M * 1024 * 1.3, 200 * 1024 * 1024));
    const xenfree = 0 - 2 * G * 1024;
    const available = xenfree - 50 * 1024 * 1024 - (pref - 3 * G * 1024);
    expect(available).toBeGreaterThan(0);
    expect(r.decisions[0]!.targetKib).toBe(Math.trunc(Math.trunc(0.999 * (pref + 1.0 * available)) / 1024));
  });
});
