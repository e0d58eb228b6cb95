import type { PolicyConfig } from './config.js';
import type { HostSnapshot, PolicyResult, VmDecision, VmHistory, VmSnapshot } from './types.js';
import { MAXMEM_SLACK_KIB, changeOf, currentTarget, fmt, poolKib, weightOf } from './common.js';
import { demand, type Demand } from './demand.js';
import { distribute, type Distribution } from './distribute.js';
import { estimate, type Estimate } from './estimate.js';
import { heldDecision, holdOf, signalHold } from './held.js';
import { significance } from './hysteresis.js';
import { readPressure } from './pressure.js';

/**
 * The xmem policy: per VM a floor and an ideal from its own guest signal, a moderated demand
 * (pressure grows it, shrinking waits for PSI to decay and is rate-limited, calm VMs are
 * probed down), then one sharing of the pool (enough / scarcity / deficit), then hysteresis.
 * A VM's bad input only ever holds that VM: it enters the others' computation as a fixed
 * amount of memory it keeps.
 */
interface Managed {
  vm: VmSnapshot;
  est: Estimate;
  dem: Demand;
}

export function decideXmem(snap: HostSnapshot, cfg: PolicyConfig): PolicyResult {
  const decisions: (VmDecision | null)[] = new Array(snap.vms.length).fill(null);
  const history: Record<number, VmHistory> = {};
  const managed: Managed[] = [];
  const slot: number[] = [];
  const heldKinds: Record<string, number> = {};
  let heldGrowth = 0;
  let managedActual = 0;

  for (let k = 0; k < snap.vms.length; k++) {
    const vm = snap.vms[k]!;
    const hold = holdOf(vm) ?? signalHold(vm, cfg);
    const est = hold ? null : estimate(vm, cfg);
    if (hold || !est) {
      const h = hold ?? { kind: 'nosignal' as const, why: 'no valid guest signal' };
      const r = heldDecision(vm, h, cfg);
      decisions[k] = r.decision;
      heldGrowth += r.growthKib;
      heldKinds[h.kind] = (heldKinds[h.kind] ?? 0) + 1;
      history[vm.domid] = { ...vm.history, lastTargetKib: r.decision.targetKib };
      continue;
    }
    const dem = demand(vm, est, readPressure(vm, cfg, snap.nowMs), cfg, snap.nowMs);
    managed.push({ vm, est, dem });
    slot.push(k);
    managedActual += vm.actualKib;
  }

  const reserved = snap.reservations.reduce((s, r) => s + r.kib, 0);
  const pool = poolKib(snap.freeKib, cfg.hostFreeReserve, reserved, heldGrowth, managedActual);
  const n = managed.length;
  const lower = new Float64Array(n);
  const floor = new Float64Array(n);
  const want = new Float64Array(n);
  const ceiling = new Float64Array(n);
  const weight = new Float64Array(n);
  const ideal = new Float64Array(n);
  const current = new Float64Array(n);
  const urgent: boolean[] = new Array(n);
  const scarcityMax = new Float64Array(n).fill(Infinity);
  let dom0 = -1;
  for (let i = 0; i < n; i++) {
    const { vm, est, dem } = managed[i]!;
    floor[i] = est.floorKib;
    lower[i] = Math.min(est.floorKib, vm.actualKib);
    want[i] = dem.wantKib;
    ceiling[i] = est.ceilingKib;
    weight[i] = weightOf(vm, cfg) * (dem.recentPressure ? cfg.pressure.scarcityWeight : 1);
    ideal[i] = est.idealKib;
    current[i] = currentTarget(vm);
    urgent[i] = dem.pressured;
    if (dem.shrinking) scarcityMax[i] = Math.max(est.floorKib, current[i]!);
    if (vm.domid === 0) dom0 = i;
  }
  const dist = distribute({ lower, floor, want, ceiling, weight, shareBase: ideal, scarcityMax, dom0 }, pool, cfg.surplus, cfg.surplusKeepFree);
  const sig = significance({ current, proposed: dist.targets, floor, ceiling, urgent }, pool, cfg);

  const text = passText(dist, pool, cfg);
  for (let i = 0; i < n; i++) {
    const { vm, est, dem } = managed[i]!;
    const cur = current[i]!;
    const target = sig.significant ? dist.targets[i]! : cur;
    const reason = sig.significant || target === dist.targets[i]
      ? reasonFor(i, vm, est, dem, dist, text)
      : `held at ${fmt(cur)}: total change ${fmt(sig.totalKib)} is below the ${fmt(cfg.hysteresis.total)} threshold (would be ${fmt(dist.targets[i]!)}, ideal ${fmt(est.idealKib)}, floor ${fmt(est.floorKib)})`;
    decisions[slot[i]!] = {
      domid: vm.domid,
      name: vm.name,
      idealKib: est.idealKib,
      floorKib: est.floorKib,
      targetKib: target,
      maxmemKib: target + MAXMEM_SLACK_KIB,
      change: changeOf(target, cur),
      reason,
      managed: true,
    };
    dem.history.lastTargetKib = target; // a fresh object from demand(), not the input's
    history[vm.domid] = dem.history;
  }

  return { decisions: decisions as VmDecision[], summary: summaryOf(dist, pool, n, heldKinds, sig.significant, sig.why, cfg), history };
}

/** The parts of every reason that are the same for all VMs in a pass, formatted once. */
interface PassText {
  /** `surplus: proportional`: a probe is given back before shares (distribute.ts). */
  probeBack: boolean;
  enoughShare: string;
  enoughNoShare: string;
  scarcity: string;
  deficit: string;
}

function passText(d: Distribution, pool: number, cfg: PolicyConfig): PassText {
  const surplus = fmt(d.surplusKib);
  return {
    probeBack: cfg.surplus === 'proportional',
    enoughShare: ` of the ${surplus} surplus (${cfg.surplus})`,
    enoughNoShare: d.surplusKib > 0 ? ` (surplus ${surplus} ${cfg.surplus === 'free' ? 'kept free' : `goes to ${cfg.surplus}`})` : '',
    scarcity: `scarcity (pool ${fmt(pool)} < wanted ${fmt(d.sumWant)}): `,
    deficit: `deficit (floors need ${fmt(d.sumFloor)}, pool ${fmt(pool)})`,
  };
}

function reasonFor(i: number, vm: VmSnapshot, est: Estimate, dem: Demand, d: Distribution, text: PassText): string {
  const t = d.targets[i]!;
  const want = dem.wantKib;
  const floor = fmt(est.floorKib);
  const wantText = want === est.idealKib ? `ideal ${fmt(est.idealKib)} (${est.detail})` : `demand ${fmt(want)} (ideal ${fmt(est.idealKib)} = ${est.detail})`;
  const tail = dem.note ? `; ${dem.note}` : '';
  switch (d.mode) {
    case 'enough': {
      const extra = d.extra[i]!;
      const share = extra > 0 ? ` plus ${fmt(extra)}${text.enoughShare}` : text.enoughNoShare;
      // Say how much of the share is the probe given back.
      const probe = est.idealKib - want;
      const back = text.probeBack && probe > 0 && extra > 0 ? `, ${fmt(Math.min(extra, probe))} of it the probe given back` : '';
      return `enough memory: ${wantText}${share}${back}, floor ${floor}${tail}`;
    }
    case 'scarcity': {
      const range = want - est.floorKib;
      const pct = range > 0 ? Math.round((100 * (t - est.floorKib)) / range) : 100;
      return `${text.scarcity}${pct}% of the way from floor ${floor} to ${wantText}${tail}`;
    }
    case 'deficit': {
      const below = vm.actualKib < est.floorKib ? `, below its floor, gets ${fmt(t)} of the ${floor} it needs` : ' held at its floor';
      return `${text.deficit}${below}: floor ${floor}, ${wantText}${tail}`;
    }
  }
}

function summaryOf(d: Distribution, pool: number, n: number, held: Record<string, number>, significant: boolean, why: string, cfg: PolicyConfig): string {
  const heldN = Object.values(held).reduce((a, b) => a + b, 0);
  const heldText = heldN > 0 ? `; ${heldN} held (${Object.entries(held).map(([k, v]) => `${v} ${k}`).join(', ')})` : '';
  const over = d.sumLower > pool ? `; OVERCOMMITTED by ${fmt(d.sumLower - pool)}: no VM can be pushed lower` : '';
  const mode =
    d.mode === 'enough'
      ? `enough memory: pool ${fmt(pool)}, wanted ${fmt(d.sumWant)}, surplus ${fmt(d.surplusKib)} ${cfg.surplus === 'free' ? 'kept free' : `to ${cfg.surplus}`}`
      : d.mode === 'scarcity'
        ? `scarcity: pool ${fmt(pool)}, wanted ${fmt(d.sumWant)}, floors ${fmt(d.sumFloor)}`
        : `deficit: pool ${fmt(pool)} below floors ${fmt(d.sumFloor)}`;
  return `xmem: ${mode}; ${n} managed${heldText}; ${significant ? 'applying' : 'holding'} (${why})${over}`;
}
