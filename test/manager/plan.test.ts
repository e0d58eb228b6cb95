import { describe, expect, it } from 'vitest';
import { fitGrows, growNeedKib, planApply } from '../../dom0/manager/plan.js';
import type { DomainFacts } from '../../dom0/host/host.js';
import type { VmDecision } from '../../src/policy/types.js';

const MiB = 1024;
const fact = (domid: number, actualMib: number, maxmemMib: number, extra: Partial<DomainFacts> = {}): DomainFacts => ({
  domid, name: `vm${domid}`, actualKib: actualMib * MiB, maxmemKib: maxmemMib * MiB, paused: false, dying: false, ...extra,
});
const decision = (domid: number, targetMib: number): VmDecision => ({
  domid, name: `vm${domid}`, idealKib: targetMib * MiB, floorKib: 0, targetKib: targetMib * MiB,
  maxmemKib: targetMib * MiB + 1024, change: 'grow', reason: `r${domid}`, managed: true,
});

describe('planApply', () => {
  const facts = new Map([fact(1, 1000, 1001), fact(2, 500, 501), fact(3, 800, 2000), fact(4, 300, 301, { paused: true })].map((f) => [f.domid, f]));
  const targets = new Map<number, number | null>([[1, 1000 * MiB], [2, 500 * MiB], [3, 800 * MiB], [4, 300 * MiB]]);

  it('splits shrinks from grows, pairs maxmem at target + 1 MiB, and leaves paused and stuck VMs alone', () => {
    const plan = planApply({
      decisions: [decision(1, 600), decision(2, 900), decision(3, 1000), decision(4, 100)],
      facts, targets, stuck: new Set([3]), lowerMaxmem: true,
    });
    expect(plan.shrinks).toEqual([expect.objectContaining({ domid: 1, toKib: 600 * MiB, maxmemKib: 600 * MiB + 1024 })]);
    expect(plan.grows).toEqual([expect.objectContaining({ domid: 2, toKib: 900 * MiB, maxmemKib: 900 * MiB + 1024 })]);
    expect(plan.skipped.map((s) => [s.domid, s.why])).toEqual([[3, 'stuck'], [4, 'paused']]);
  });

  it('does not touch maxmem when the ceiling already allows the grow, or when told not to lower it', () => {
    const plan = planApply({ decisions: [decision(3, 1500), decision(1, 600)], facts, targets, stuck: new Set(), lowerMaxmem: false });
    expect(plan.grows[0]!.maxmemKib).toBeNull();
    expect(plan.shrinks[0]!.maxmemKib).toBeNull();
  });

  it('holds are no-ops', () => {
    expect(planApply({ decisions: [decision(1, 1000)], facts, targets, stuck: new Set(), lowerMaxmem: true }))
      .toEqual({ shrinks: [], grows: [], skipped: [] });
  });
});

describe('fitGrows', () => {
  const facts = new Map([fact(1, 100, 101), fact(2, 100, 101)].map((f) => [f.domid, f]));
  const grows = [
    { domid: 1, name: 'vm1', fromKib: 100 * MiB, toKib: 300 * MiB, maxmemKib: 300 * MiB + 1024, reason: 'a' },
    { domid: 2, name: 'vm2', fromKib: 100 * MiB, toKib: 300 * MiB, maxmemKib: 300 * MiB + 1024, reason: 'b' },
  ];
  it('grants everything when it fits', () => {
    expect(fitGrows(grows, facts, 400 * MiB)).toHaveLength(2);
  });
  it('trims the first grow that does not fit and defers the rest', () => {
    const out = fitGrows(grows, facts, 250 * MiB);
    expect(out.map((g) => [g.domid, g.toKib / MiB, g.maxmemKib! / MiB])).toEqual([[1, 300, 300 + 1], [2, 150, 150 + 1]]);
    expect(out[1]!.reason).toMatch(/partial/);
    expect(fitGrows(grows, facts, 100 * MiB).map((g) => g.toKib / MiB)).toEqual([200]);
    expect(fitGrows(grows, facts, 0)).toEqual([]);
  });
});

describe('growth already promised (a target in force above the allocation)', () => {
  const facts = new Map([fact(1, 100, 301), fact(2, 100, 101)].map((f) => [f.domid, f]));
  // vm1 was granted 250 MiB by an earlier pass and has not grown yet: that is in promisedKib.
  const grows = [
    { domid: 1, name: 'vm1', fromKib: 250 * MiB, toKib: 300 * MiB, maxmemKib: null, reason: 'a' },
    { domid: 2, name: 'vm2', fromKib: 100 * MiB, toKib: 300 * MiB, maxmemKib: 300 * MiB + 1024, reason: 'b' },
  ];
  it('a grow needs only what lies above its target in force', () => {
    expect(growNeedKib(grows, facts)).toBe(50 * MiB + 200 * MiB);
    expect(fitGrows(grows, facts, 250 * MiB)).toHaveLength(2);
  });
  it('a trimmed grow never goes below the target it already has', () => {
    const out = fitGrows([grows[0]!], facts, 20 * MiB);
    expect(out.map((g) => g.toKib / MiB)).toEqual([270]);
    expect(fitGrows([grows[0]!], facts, 0)).toEqual([]);
  });
});
