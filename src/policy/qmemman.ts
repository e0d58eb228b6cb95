import type { PolicyConfig } from './config.js';
import type { HostSnapshot, PolicyResult, VmDecision, VmHistory, VmSnapshot } from './types.js';
import { qubesUsedKib } from '../schemas/report.js';
import { MAXMEM_SLACK_KIB, ceilingOf, changeOf, currentTarget, fmt } from './common.js';
import { heldDecision, holdOf } from './held.js';

/**
 * `policy: qmemman`: Qubes' qmemman algorithm (qubes/qmemman/algo.py and the balancing half
 * of systemstate.py, anchors §1.5-1.7), reproduced step by step, in bytes, with Python's
 * int() truncations and float order of operations, so the same inputs give the same targets:
 *
 *   pref   = domU: int(max(min(used × CACHE_FACTOR, mem_max), MIN_PREFMEM))
 *            dom0: int(min(used × CACHE_FACTOR + DOM0_MEM_BOOST, mem_max))
 *   need   = pref − mem_actual, mem_actual = max(allocation, last_target)
 *   xenfree = int(free × 1024 × 1/1.00781) − Σ max(0, last_target − allocation)
 *   balance(xenfree − 50 MiB): enough → pref + share of the available ∝ pref, × 0.999,
 *   clipped at mem_max with the excess re-spread; low → donors to pref (skipping donors
 *   within 10 MiB of it), acceptors share `squeezed_mem` ∝ pref. Donors first.
 *   Applied only if significant (free 15 MiB short of 50 MiB, a VM under pref moving
 *   > 15 MiB, or > 150 MiB moved in total).
 *
 * Sign quirk, kept on purpose: in low memory qmemman *subtracts* the donors' surplus from
 * Xen's free memory before sharing it among acceptors, so acceptors get memory in the same
 * pass only when free memory already exceeds what donors will give; otherwise they get it on
 * a later pass once it is actually free. This policy's promise is "no behaviour change", and
 * the quirk is safe (it only delays), so it is reproduced, not fixed.
 *
 * Inputs: `used` is Qubes' meminfo number, or the same number computed from an xmem report
 * (qubesUsedKib), or MemTotal − MemAvailable from a XAPI agent. Where qmemman has no notion,
 * xmem's rules apply and are documented: paused, dying and pinned VMs are held (qmemman
 * balances paused VMs, Qubes issue #11121), stuck VMs are no_progress, admission
 * reservations are subtracted from Xen free memory (qmemman holds its lock instead), an
 * admin `max` override lowers mem_max and a `min` override raises pref. last_target is
 * carried in KiB between passes (qmemman keeps bytes; the difference is under 1 KiB).
 */
const MEM_OVERHEAD_FACTOR = 1.0 / 1.00781;
const XEN_FREE_MEM_LEFT = 50 * 1024 * 1024;
const MIN_TOTAL_MEMORY_TRANSFER = 150 * 1024 * 1024;
const MIN_MEM_CHANGE_WHEN_UNDER_PREF = 15 * 1024 * 1024;
const LOW_MEM_DONOR_MIN = 10 * 1024 * 1024;

/** One domain as qmemman's DomainState sees it (bytes). Exported for the golden tests. */
export interface QmemmanDom {
  vm: VmSnapshot;
  isDom0: boolean;
  memUsed: number | null;
  memCurrent: number;
  lastTarget: number;
  memActual: number;
  memMax: number;
  noProgress: boolean;
  minPref: number;
}

export interface QmemmanConstants {
  cacheFactor: number;
  minPrefmem: number;
  dom0Boost: number;
}

export function prefMem(d: QmemmanDom, c: QmemmanConstants): number {
  let used = d.memUsed! * c.cacheFactor;
  if (d.isDom0) {
    used += c.dom0Boost;
    return Math.max(Math.trunc(Math.min(used, d.memMax)), d.minPref);
  }
  return Math.max(Math.trunc(Math.max(Math.min(used, d.memMax), c.minPrefmem)), d.minPref);
}

function usedBytes(vm: VmSnapshot): number | null {
  const s = vm.signal;
  switch (s.kind) {
    case 'qubes':
      return s.usedKib * 1024;
    case 'xmem':
      return qubesUsedKib(s.report) * 1024;
    case 'xapi':
      return Math.max(0, s.totalKib - s.freeKib) * 1024;
    case 'none':
      return null;
  }
}

type Role = 'donor' | 'acceptor';
export interface QmemmanRequest {
  dom: QmemmanDom;
  target: number;
  role: Role;
  why: string;
}

/** algo.balance(): returns the requests in qmemman's order (donors first). */
export function qmemmanBalance(xenFreeMem: number, doms: QmemmanDom[], c: QmemmanConstants): { requests: QmemmanRequest[]; mode: string; skipped: Map<QmemmanDom, string> } {
  const skipped = new Map<QmemmanDom, string>();
  let totalNeeded = 0;
  let totalPref = 0;
  let totalPrefAcceptors = 0;
  const donors: QmemmanDom[] = [];
  const acceptors: QmemmanDom[] = [];
  const active = doms.filter((d) => d.memUsed !== null && !d.noProgress);
  for (const d of active) {
    const pref = prefMem(d, c);
    const need = pref - d.memActual;
    if (need < 0 || d.memActual >= d.memMax) donors.push(d);
    else {
      acceptors.push(d);
      totalPrefAcceptors += pref;
    }
    totalNeeded += need;
    totalPref += pref;
  }
  const totalAvailable = xenFreeMem - totalNeeded;

  if (totalAvailable > 0) {
    const targets = new Map<QmemmanDom, number>();
    let memLeft = 0;
    let acceptorsCount = 0;
    for (const d of active) {
      const pref = prefMem(d, c);
      const scale = (1.0 * pref) / totalPref;
      const nonint = pref + scale * totalAvailable;
      let target = Math.trunc(0.999 * nonint);
      if (target > d.memMax) {
        memLeft += target - d.memMax;
        target = d.memMax;
      } else acceptorsCount += 1;
      targets.set(d, target);
    }
    while (memLeft > 0 && acceptorsCount > 0) {
      let newMemLeft = 0;
      let newAcceptors = acceptorsCount;
      for (const [d, t] of targets) {
        let target = t;
        if (target < d.memMax) {
          const bonus = Math.trunc(0.999 * (memLeft / acceptorsCount));
          if (target + bonus >= d.memMax) {
            newMemLeft += target + bonus - d.memMax;
            target = d.memMax;
            newAcceptors -= 1;
          } else target += bonus;
        }
        targets.set(d, target);
      }
      memLeft = newMemLeft;
      acceptorsCount = newAcceptors;
    }
    const donorRq: QmemmanRequest[] = [];
    const acceptorRq: QmemmanRequest[] = [];
    const why = `enough memory: pref plus a share ∝ pref of ${fmt(totalAvailable / 1024)} available`;
    for (const [d, target] of targets) {
      if (target < d.memActual) donorRq.push({ dom: d, target, role: 'donor', why });
      else acceptorRq.push({ dom: d, target, role: 'acceptor', why });
    }
    return { requests: [...donorRq, ...acceptorRq], mode: `enough memory (${fmt(totalAvailable / 1024)} available above prefs)`, skipped };
  }

  // balance_when_low_on_mem
  const requests: QmemmanRequest[] = [];
  let squeezed = xenFreeMem;
  for (const d of donors) {
    const avail = -(prefMem(d, c) - d.memActual);
    if (avail < LOW_MEM_DONOR_MIN) {
      skipped.set(d, 'low on memory: donor within 10 MiB of its pref, left alone');
      continue;
    }
    squeezed -= avail;
    requests.push({ dom: d, target: prefMem(d, c), role: 'donor', why: 'low on memory: donor pushed to its pref' });
  }
  const mode = `low on memory (${fmt(-totalAvailable / 1024)} short of prefs)`;
  if (squeezed < 0) {
    for (const d of acceptors) skipped.set(d, `low on memory: acceptor waits for donors to free memory first (squeezed_mem ${fmt(squeezed / 1024)}, qmemman's sign quirk)`);
    return { requests, mode, skipped };
  }
  for (const d of acceptors) {
    const scale = (1.0 * prefMem(d, c)) / totalPrefAcceptors;
    const nonint = d.memActual + scale * squeezed;
    const target = Math.min(Math.trunc(0.999 * nonint), d.memMax);
    requests.push({ dom: d, target, role: 'acceptor', why: `low on memory: acceptor shares ${fmt(squeezed / 1024)} ∝ pref` });
  }
  return { requests, mode, skipped };
}

function isSignificant(requests: QmemmanRequest[], xenfree: number, c: QmemmanConstants): { ok: boolean; why: string } {
  if (XEN_FREE_MEM_LEFT - xenfree > MIN_MEM_CHANGE_WHEN_UNDER_PREF) return { ok: true, why: 'Xen free memory too low' };
  let total = 0;
  for (const rq of requests) {
    const change = rq.target - rq.dom.lastTarget;
    total += Math.abs(change);
    const pref = prefMem(rq.dom, c);
    if (rq.dom.lastTarget > 0 && rq.dom.lastTarget < pref && change > MIN_MEM_CHANGE_WHEN_UNDER_PREF) {
      return { ok: true, why: `${rq.dom.vm.name} is below pref` };
    }
  }
  const ok = total + Math.abs(xenfree - XEN_FREE_MEM_LEFT) > MIN_TOTAL_MEMORY_TRANSFER;
  return { ok, why: ok ? 'transfer above 150 MiB' : `transfer ${fmt((total + Math.abs(xenfree - XEN_FREE_MEM_LEFT)) / 1024)} below 150 MiB` };
}

export function decideQmemman(snap: HostSnapshot, cfg: PolicyConfig): PolicyResult {
  const c: QmemmanConstants = {
    cacheFactor: cfg.qmemman['cache-margin-factor'],
    minPrefmem: cfg.qmemman['vm-min-mem'],
    dom0Boost: cfg.qmemman['dom0-mem-boost'],
  };
  const decisions: VmDecision[] = [];
  const history: Record<number, VmHistory> = {};
  const doms: QmemmanDom[] = [];
  let assignedButUnused = 0;
  let pinnedGrowth = 0;
  for (const vm of snap.vms) {
    const memCurrent = vm.actualKib * 1024;
    const lastTarget = (vm.history.lastTargetKib ?? vm.targetKib ?? 0) * 1024;
    const hold = holdOf(vm);
    if (hold?.kind === 'pinned') {
      const r = heldDecision(vm, hold, cfg);
      decisions.push(r.decision);
      pinnedGrowth += r.growthKib * 1024;
      history[vm.domid] = { ...vm.history, lastTargetKib: r.decision.targetKib };
      continue;
    }
    assignedButUnused += Math.max(0, lastTarget - memCurrent);
    doms.push({
      vm,
      isDom0: vm.domid === 0,
      memUsed: hold && hold.kind !== 'stuck' ? null : usedBytes(vm),
      memCurrent,
      lastTarget,
      memActual: Math.max(memCurrent, lastTarget),
      memMax: ceilingOf(vm) * 1024,
      noProgress: vm.stuck,
      // An admin min can raise pref only up to what Xen lets the VM hold: a pref above mem_max
      // makes the host look short and sends the other VMs back and forth between passes.
      minPref: Math.min(vm.override?.minKib ?? 0, ceilingOf(vm)) * 1024,
    });
  }
  const reserved = snap.reservations.reduce((s, r) => s + r.kib, 0) * 1024;
  const xenfree = Math.trunc(snap.freeKib * 1024 * MEM_OVERHEAD_FACTOR) - assignedButUnused - reserved - pinnedGrowth;
  const { requests, mode, skipped } = qmemmanBalance(xenfree - XEN_FREE_MEM_LEFT, doms, c);
  const sig = isSignificant(requests, xenfree, c);
  const byDom = new Map(requests.map((r) => [r.dom, r]));

  const out: VmDecision[] = [];
  const order = sig.ok ? [...requests.map((r) => r.dom), ...doms.filter((d) => !byDom.has(d))] : doms;
  for (const d of order) {
    const vm = d.vm;
    const cur = currentTarget(vm);
    const hold = holdOf(vm);
    if (d.memUsed === null || d.noProgress) {
      const r = heldDecision(vm, hold ?? { kind: 'nosignal', why: vm.signal.kind === 'none' ? `no meminfo (${vm.signal.why.slice(0, 80)})` : 'no meminfo' }, cfg);
      out.push(r.decision);
      history[vm.domid] = { ...vm.history, lastTargetKib: vm.history.lastTargetKib ?? vm.targetKib };
      continue;
    }
    const pref = prefMem(d, c);
    const prefKib = Math.trunc(pref / 1024);
    const prefText = `pref ${fmt(prefKib)} (used ${fmt(d.memUsed / 1024)} × ${c.cacheFactor}${d.isDom0 ? ` + boost ${fmt(c.dom0Boost / 1024)}` : ''})`;
    const rq = byDom.get(d);
    let target = cur;
    let reason: string;
    if (!sig.ok) reason = `qmemman holds ${fmt(cur)}: ${sig.why}; ${prefText}`;
    else if (rq) {
      target = Math.trunc(rq.target / 1024);
      reason = `qmemman ${rq.why}: ${fmt(target)}, ${prefText}`;
    } else reason = `qmemman ${skipped.get(d) ?? 'no request'}: ${prefText}`;
    out.push({
      domid: vm.domid,
      name: vm.name,
      idealKib: prefKib,
      floorKib: prefKib,
      targetKib: target,
      maxmemKib: target === cur && !(sig.ok && rq) ? vm.maxmemKib : target + MAXMEM_SLACK_KIB,
      change: changeOf(target, cur),
      reason,
      managed: true,
    });
    history[vm.domid] = { ...vm.history, lastTargetKib: sig.ok && rq ? target : vm.history.lastTargetKib ?? vm.targetKib };
  }
  return {
    decisions: [...out, ...decisions],
    summary: `qmemman: ${mode}; xenfree ${fmt(xenfree / 1024)}; ${sig.ok ? `applying ${requests.length} requests (${sig.why})` : `holding (${sig.why})`}`,
    history,
  };
}
