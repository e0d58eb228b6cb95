import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { planAdmission, type AdmissionInput } from '../../dom0/admission/plan.js';
import { adviceFor, fmtSize, planSentence, refusalSentence } from '../../dom0/admission/words.js';
import { GiB, MiB, world, type VmSpec } from './helpers.js';

const dom0: VmSpec = { domid: 0, name: 'dom0', actualKib: 4 * GiB, floorKib: 1 * GiB };
const work: VmSpec = { domid: 1, name: 'work', actualKib: 4 * GiB, floorKib: 1 * GiB };
const personal: VmSpec = { domid: 2, name: 'personal', actualKib: 2 * GiB, floorKib: 1536 * MiB };
const sysNet: VmSpec = { domid: 3, name: 'sys-net', actualKib: 400 * MiB, floorKib: 400 * MiB };

function input(vms: VmSpec[], freeKib: number, neededKib: number, extra: Partial<AdmissionInput> = {}): AdmissionInput {
  return { ...world(vms, freeKib), reservations: [], reserveKib: 64 * MiB, neededKib, ...extra };
}

describe('planAdmission: examples', () => {
  it('fits now when free minus the reserve covers the request', () => {
    const p = planAdmission(input([work], 1 * GiB + 64 * MiB, 1 * GiB));
    expect(p).toEqual({ kind: 'fits-now', neededKib: 1 * GiB, availableKib: 1 * GiB });
  });

  it('counts other live reservations as taken', () => {
    const p = planAdmission(input([work], 2 * GiB, 1 * GiB, { reservations: [{ id: 'a', forName: 'x', kib: 1 * GiB }] }));
    expect(p.kind).toBe('squeeze');
    if (p.kind !== 'squeeze') return;
    expect(p.availableKib).toBe(1 * GiB - 64 * MiB);
    expect(p.shortfallKib).toBe(64 * MiB);
  });

  it('growth still in flight is not free: a balloon below its target will take it', () => {
    const { snapshot, decisions } = world([work, personal], 1 * GiB + 64 * MiB);
    // personal's target is 300 MiB above what it has (its ceiling allows 200 MiB of that).
    const growing = { ...snapshot, vms: snapshot.vms.map((v) => (v.name === 'personal' ? { ...v, targetKib: v.actualKib + 300 * MiB, maxmemKib: v.actualKib + 200 * MiB } : v)) };
    const p = planAdmission({ snapshot: growing, decisions, reservations: [], reserveKib: 64 * MiB, neededKib: 1 * GiB });
    expect(p.kind).toBe('squeeze');
    if (p.kind === 'squeeze') expect(p.availableKib).toBe(1 * GiB - 200 * MiB);
    // xl's MiB rounding (up to 1 MiB below a target) is not growth.
    const rounding = { ...snapshot, vms: snapshot.vms.map((v) => ({ ...v, targetKib: v.actualKib + 1000 })) };
    expect(planAdmission({ snapshot: rounding, decisions, reservations: [], reserveKib: 64 * MiB, neededKib: 1 * GiB }).kind).toBe('fits-now');
  });

  it('squeezes in proportion to the surplus above floors', () => {
    // work has 3 GiB surplus, personal 512 MiB, sys-net none: 6:1.
    const q = planAdmission(input([work, personal, sysNet], 64 * MiB, 7 * 256 * MiB));
    expect(q.kind).toBe('squeeze');
    if (q.kind !== 'squeeze') return;
    expect(q.reclaimableKib).toBe(3 * GiB + 512 * MiB);
    const give = Object.fromEntries(q.donors.map((d) => [d.name, d.giveKib]));
    expect(give).toEqual({ work: 1536 * MiB, personal: 256 * MiB });
    expect(q.donors.map((d) => d.name)).not.toContain('sys-net');
  });

  it('never squeezes a VM the policy does not manage, nor a paused, stuck or dying one', () => {
    const vms: VmSpec[] = [
      { ...work, managed: false },
      { ...personal, domid: 2, paused: true },
      { domid: 4, name: 'stuck', actualKib: 2 * GiB, floorKib: 1 * GiB, stuck: true },
      { domid: 5, name: 'dying', actualKib: 2 * GiB, floorKib: 1 * GiB, dying: true },
      { domid: 6, name: 'ok', actualKib: 2 * GiB, floorKib: 1 * GiB },
    ];
    const p = planAdmission(input(vms, 64 * MiB, 512 * MiB));
    expect(p.kind).toBe('squeeze');
    if (p.kind === 'squeeze') expect(p.donors.map((d) => d.name)).toEqual(['ok']);
  });

  it('refuses below the floors with the amounts, each contribution and the fewest shutdowns', () => {
    // available 512 MiB; reclaimable dom0 3 GiB + work 3 GiB + personal 512 MiB; ask 8 GiB → 1 GiB short.
    const p = planAdmission(input([dom0, work, personal, sysNet], 576 * MiB, 8 * GiB, { forName: 'new' }));
    if (p.kind !== 'refused') throw new Error(`expected a refusal, got ${p.kind}`);
    const r = p.refusal;
    expect(r.neededKib).toBe(8 * GiB);
    expect(r.availableKib).toBe(512 * MiB);
    expect(r.reclaimableKib).toBe(6 * GiB + 512 * MiB);
    expect(r.missingKib).toBe(1 * GiB);
    expect(r.donors.map((d) => [d.name, d.surplusKib])).toEqual([['dom0', 3 * GiB], ['work', 3 * GiB], ['personal', 512 * MiB]]);
    // Shutting down frees the floor part on top: work 1 GiB (enough), personal 1.5 GiB, sys-net 400 MiB.
    expect(r.shutdown).toEqual([{ domid: 1, name: 'work', actualKib: 4 * GiB }]);
    expect(r.shutdownAlternatives.map((c) => c.name)).toEqual(['work', 'personal']);
  });

  it('refusal: names the fewest VMs to shut down, smallest that still fits', () => {
    // available 0, reclaimable: work 3 GiB + personal 512 MiB; need 4.7 GiB → missing ~1.2 GiB.
    // Gains (floors): work 1 GiB, personal 1.5 GiB, sys-net 400 MiB: personal alone covers 1.2.
    const need = 3 * GiB + 512 * MiB + 1229 * MiB;
    const p = planAdmission(input([work, personal, sysNet], 64 * MiB, need));
    expect(p.kind).toBe('refused');
    if (p.kind !== 'refused') return;
    expect(p.refusal.missingKib).toBe(1229 * MiB);
    expect(p.refusal.shutdown?.map((c) => c.name)).toEqual(['personal']);
    expect(adviceFor(p.refusal)).toBe('shut down personal to free 1.2 GiB');
  });

  it('refusal: "or" when either of two VMs alone would do', () => {
    const a: VmSpec = { domid: 1, name: 'work', actualKib: 2 * GiB, floorKib: 2 * GiB };
    const b: VmSpec = { domid: 2, name: 'personal', actualKib: 3 * GiB, floorKib: 3 * GiB };
    const p = planAdmission(input([dom0, a, b], 64 * MiB, 1229 * MiB + 3 * GiB));
    if (p.kind !== 'refused') throw new Error(`expected a refusal, got ${p.kind}`);
    // dom0 gives its 3 GiB surplus, 1.2 GiB missing; both work (2 GiB) and personal (3 GiB) cover it.
    expect(p.refusal.shutdown?.map((c) => c.name)).toEqual(['work']);
    expect(p.refusal.shutdownAlternatives.map((c) => c.name)).toEqual(['work', 'personal']);
    expect(adviceFor(p.refusal)).toBe('shut down work or personal to free 1.2 GiB');
    expect(refusalSentence(p.refusal, 'new')).toBe(
      'cannot reserve 4.2 GiB for new: 0 KiB free and 3 GiB reclaimable from running VMs without going below ' +
        'their floors (1.2 GiB short); shut down work or personal to free 1.2 GiB',
    );
  });

  it('refusal: "and" when it takes several, never dom0 nor the VM being started', () => {
    const vms: VmSpec[] = [
      dom0,
      { domid: 1, name: 'a', actualKib: 1 * GiB, floorKib: 1 * GiB },
      { domid: 2, name: 'b', actualKib: 1 * GiB, floorKib: 1 * GiB },
      { domid: 3, name: 'new', actualKib: 8 * GiB, floorKib: 8 * GiB },
    ];
    const p = planAdmission(input(vms, 64 * MiB, 3 * GiB + 1536 * MiB, { forName: 'new' }));
    if (p.kind !== 'refused') throw new Error(`expected a refusal, got ${p.kind}`);
    expect(p.refusal.shutdown?.map((c) => c.name).sort()).toEqual(['a', 'b']);
    expect(adviceFor(p.refusal)).toMatch(/^shut down (a and b|b and a) to free 1.5 GiB$/);
  });

  it('refusal: says so when no set of shutdowns would do', () => {
    const p = planAdmission(input([work], 64 * MiB, 100 * GiB));
    if (p.kind !== 'refused') throw new Error('expected a refusal');
    expect(p.refusal.shutdown).toBeNull();
    expect(adviceFor(p.refusal)).toMatch(/ask for less memory/);
  });

  it('words: sizes and plan sentences', () => {
    expect(fmtSize(1.2 * GiB)).toBe('1.2 GiB');
    expect(fmtSize(2 * GiB)).toBe('2 GiB');
    expect(fmtSize(640 * MiB)).toBe('640 MiB');
    expect(fmtSize(12)).toBe('12 KiB');
    const q = planAdmission(input([work, personal], 64 * MiB, 7 * 256 * MiB));
    expect(planSentence(q, 'x')).toBe('1.8 GiB for x fits after freeing 1.8 GiB from work 1.5 GiB, personal 256 MiB');
  });
});

// ---- properties ---------------------------------------------------------------------------

const vmArb = (domid: number) =>
  fc.record({
    actualKib: fc.integer({ min: 0, max: 16 * GiB }),
    floorKib: fc.integer({ min: 0, max: 16 * GiB }),
    managed: fc.boolean(),
    paused: fc.boolean(),
    stuck: fc.boolean(),
    dying: fc.boolean(),
  }).map((v): VmSpec => ({ domid, name: `vm${domid}`, ...v }));


const caseArb = fc
  .integer({ min: 1, max: 8 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => vmArb(i))))
  .chain((vms) =>
    fc.record<Case>({
      vms: fc.constant(vms as VmSpec[]),
      freeKib: fc.integer({ min: 0, max: 32 * GiB }),
      reserveKib: fc.integer({ min: 0, max: 256 * MiB }),
      reserved: fc.array(fc.integer({ min: 0, max: 4 * GiB }), { maxLength: 3 }),
      neededKib: fc.integer({ min: 0, max: 64 * GiB }),
    }),
  );

type Case = { vms: VmSpec[]; freeKib: number; reserveKib: number; reserved: number[]; neededKib: number };

function build(c: Case): AdmissionInput {
  return {
    ...world(c.vms, c.freeKib),
    reservations: c.reserved.map((kib, i) => ({ id: `r${i}`, forName: `x${i}`, kib })),
    reserveKib: c.reserveKib,
    neededKib: c.neededKib,
  };
}

const canGive = (v: VmSpec) => (v.managed ?? true) && !v.paused && !v.stuck && !v.dying;

describe('planAdmission: properties', () => {
  it('classifies exactly: fits now / squeeze / refused from available and Σ surplus above floors', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const inp = build(c);
        const p = planAdmission(inp);
        const available = Math.max(0, c.freeKib - c.reserveKib - c.reserved.reduce((s, k) => s + k, 0));
        const reclaimable = c.vms.filter(canGive).reduce((s, v) => s + Math.max(0, v.actualKib - v.floorKib), 0);
        if (available >= c.neededKib) expect(p.kind).toBe('fits-now');
        else if (available + reclaimable >= c.neededKib) expect(p.kind).toBe('squeeze');
        else expect(p.kind).toBe('refused');
      }),
      { numRuns: 500 },
    );
  });

  it('squeeze: gives add up to the shortfall, proportional within 1 KiB, nobody below its floor', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const p = planAdmission(build(c));
        if (p.kind !== 'squeeze') return;
        expect(p.donors.reduce((s, d) => s + d.giveKib, 0)).toBe(p.shortfallKib);
        for (const d of p.donors) {
          const vm = c.vms.find((v) => v.domid === d.domid)!;
          expect(canGive(vm)).toBe(true);
          expect(d.giveKib).toBeGreaterThanOrEqual(0);
          expect(vm.actualKib - d.giveKib).toBeGreaterThanOrEqual(vm.floorKib);
          const exact = (p.shortfallKib * d.surplusKib) / p.reclaimableKib;
          expect(Math.abs(d.giveKib - exact)).toBeLessThan(1);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refused: the shutdown set fits, is the smallest possible, and excludes dom0; null only if nothing fits', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const inp = build(c);
        const p = planAdmission(inp);
        if (p.kind !== 'refused') return;
        const r = p.refusal;
        expect(r.missingKib).toBe(r.neededKib - r.availableKib - r.reclaimableKib);
        expect(r.missingKib).toBeGreaterThan(0);
        const gain = (v) => v.actualKib - (canGive(v) ? Math.max(0, v.actualKib - v.floorKib) : 0);
        const cands = c.vms.filter((v) => v.domid !== 0 && !v.dying);
        const fits = (set: VmSpec[]) => set.reduce((s, v) => s + gain(v), 0) >= r.missingKib;
        // Brute force the smallest fitting subset size.
        let best: number | null = null;
        for (let mask = 0; mask < 1 << cands.length; mask++) {
          const set = cands.filter((_, i) => mask & (1 << i));
          if (fits(set) && (best === null || set.length < best)) best = set.length;
        }
        if (best === null) {
          expect(r.shutdown).toBeNull();
          return;
        }
        expect(r.shutdown).not.toBeNull();
        const chosen = r.shutdown!.map((s) => c.vms.find((v) => v.domid === s.domid)!);
        expect(chosen.length).toBe(best);
        expect(fits(chosen)).toBe(true);
        expect(chosen.some((v) => v.domid === 0)).toBe(false);
        for (const s of r.shutdown!) expect(s.actualKib).toBe(c.vms.find((v) => v.domid === s.domid)!.actualKib);
        for (const a of r.shutdownAlternatives) expect(fits([c.vms.find((v) => v.domid === a.domid)!])).toBe(true);
        if (best === 1) {
          const singles = cands.filter((v) => fits([v]) && gain(v) > 0).length;
          expect(r.shutdownAlternatives.length).toBe(singles);
        }
      }),
      { numRuns: 500 },
    );
  });
});
