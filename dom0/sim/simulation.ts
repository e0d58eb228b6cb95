import { EventEmitter } from 'node:events';
import type { Clock } from '../../src/clock.js';
import type { Reservation, VmDecision } from '../../src/policy/types.js';
import { encodeGuestReport } from '../../src/schemas/report.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import { MIB } from '../../src/units.js';
import { BalloonSchema, type BalloonSpec, type Scenario, type VmSpec } from './scenario.js';
import { SimGuest } from './guest.js';
import { SimHost } from './host.js';
import { Rng } from './rng.js';
import { WorkloadPlayer } from './workload.js';
import { emptyVmMetrics, type SimResults, type StartRecord, type VmMetrics } from './metrics.js';

/**
 * A scenario played on the simulated host: VMs start (through an admission step that
 * reserves memory and waits for it, like qmemman.sock), run their workloads, publish xmem
 * agent reports into the xenstore, pause, shut down. Drives itself with `clock` timers, so the
 * same code runs on the virtual clock (bench, tests) and in real time (demo).
 */

export interface SimulationOptions {
  scenario: Scenario;
  clock: Clock;
  /** The toolstack's dom0 connection. */
  xs: XenstoreClient;
  /** A connection for a guest's agent and balloon driver. */
  guestXs: (domid: number) => XenstoreClient;
  /** VM-start admission (the real one, dom0/admission, in `buildSimRig`). */
  admission: StartPort;
  /** The balancer's latest decisions, to check floors on every shrink it writes. */
  decisions?: () => VmDecision[];
}

interface RunningVm {
  spec: VmSpec;
  domid: number;
  guest: SimGuest;
  player: WorkloadPlayer;
  startedMs: number;
  seq: number;
  lastPublishMs: number;
  lastPublished: { avail: number; commit: number; s10: number; stot: number } | null;
  metrics: VmMetrics;
  pausedUntilMs: number | null;
}

/** How a VM start gets its memory: reserve (squeezing others), then release once started. */
export interface StartPort {
  reserve(forName: string, kib: number): Promise<{ ok: true; id: string } | { ok: false; why: string }>;
  release(id: string): void;
  /** Live reservations (what the manager's policy counts as used). */
  reservations(): Reservation[];
}

const REPORT_CHECK_MS = 1000;
const REPORT_HEARTBEAT_MS = 10_000;

export class Simulation extends EventEmitter {
  readonly host: SimHost;
  private readonly vms = new Map<number, RunningVm>();
  private readonly gone: VmMetrics[] = [];
  /** Starts waiting for admission: their memory is promised but not yet in a domain. */
  private readonly inFlight = new Map<string, number>();
  /** Started domains whose reservation stays until the balancer has seen them (qubesd keeps
   *  qmemman.sock open until the domain exists, for the same reason). */
  private readonly handedOver: { id: string; createdMs: number }[] = [];
  private readonly starts: StartRecord[] = [];
  private readonly events: { atMs: number; run: () => Promise<void> | void }[] = [];
  private readonly rng: Rng;
  private nextDomid = 1;
  private cancelTick: (() => void) | null = null;
  private lastTickMs = 0;
  private readonly beganMs: number;
  private ticks = 0;

  constructor(private readonly o: SimulationOptions) {
    super();
    this.rng = new Rng(o.scenario.seed);
    this.beganMs = o.clock.now();
    this.host = new SimHost({
      totalKib: o.scenario.host.totalMiB * MIB,
      xenKib: o.scenario.host.xenMiB * MIB,
      xs: o.xs,
      guestXs: o.guestXs,
      now: () => o.clock.now(),
      reservedKib: () => [...this.inFlight.values()].reduce((a, b) => a + b, 0),
    });
    this.host.on('target', (ev: { domid: number; kib: number; beforeKib: number | null; actualKib: number }) => this.checkFloor(ev));
  }

  /** Live admission reservations (the manager's `reservations` dependency). */
  reservations(): Reservation[] {
    return this.o.admission.reservations();
  }

  /** A balancing pass that started at `passStartMs` has seen every domain created before it. */
  passSeen(passStartMs: number): void {
    for (let i = this.handedOver.length - 1; i >= 0; i--) {
      const h = this.handedOver[i]!;
      if (h.createdMs < passStartMs) {
        this.handedOver.splice(i, 1);
        this.o.admission.release(h.id);
      }
    }
  }

  elapsedMs(): number {
    return this.o.clock.now() - this.beganMs;
  }

  /** Creates the VMs running at time 0 and schedules every scenario event. */
  async setup(): Promise<void> {
    const s = this.o.scenario;
    const expanded = expand(s.vms);
    const dom0 = expanded.find((v) => v.dom0)!;
    await this.createVm(dom0, 0);
    for (const vm of expanded) {
      if (vm.dom0) continue;
      if (vm.startS === undefined) await this.createVm(vm, this.nextDomid++);
      else this.at(vm.startS, () => void this.requestStart(vm));
      if (vm.stopS !== undefined) this.at(vm.stopS, () => this.stopVm(vm.name));
      for (const p of vm.pauses) {
        this.at(p.atS, () => this.setPaused(vm.name, true));
        this.at(p.atS + p.forS, () => this.setPaused(vm.name, false));
      }
    }
    this.events.sort((a, b) => a.atMs - b.atMs);
  }

  start(): void {
    this.lastTickMs = this.o.clock.now();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.cancelTick?.();
    this.cancelTick = null;
    for (const vm of this.vms.values()) await this.host.domains.get(vm.domid)?.detach();
  }

  private schedule(): void {
    this.cancelTick = this.o.clock.setTimer(this.o.scenario.tickMs, () => {
      void this.tick().then(() => {
        if (this.cancelTick) this.schedule();
      }, (err: unknown) => this.emit('error', err));
    });
  }

  /** One simulation step. */
  async tick(): Promise<void> {
    const now = this.o.clock.now();
    const dtS = Math.max(0, now - this.lastTickMs) / 1000;
    this.lastTickMs = now;
    this.ticks++;
    this.host.moveBalloons(now, dtS);
    const writes: Promise<void>[] = [];
    for (const vm of this.vms.values()) {
      const d = this.host.domains.get(vm.domid);
      if (!d) continue;
      if (vm.pausedUntilMs !== null) continue; // a paused guest does nothing, reports nothing
      const demand = vm.player.at((now - vm.startedMs) / 1000);
      vm.guest.step(d.actualKib, demand, dtS);
      const m = vm.metrics;
      m.liveS += dtS;
      m.idleMiBs += (Math.max(0, d.actualKib - vm.guest.needKib()) / MIB) * dtS;
      m.shortMiBs += (Math.max(0, vm.guest.needKib() - d.actualKib) / MIB) * dtS;
      if (vm.spec.agent && now - vm.lastPublishMs >= REPORT_CHECK_MS) writes.push(this.publish(vm, now));
    }
    await Promise.all(writes);
    while (this.events.length > 0 && this.events[0]!.atMs <= now - this.beganMs) await this.events.shift()!.run();
  }

  // ---- guests -------------------------------------------------------------------------------

  private async publish(vm: RunningVm, now: number): Promise<void> {
    const d = this.host.domains.get(vm.domid)!;
    const c = vm.guest.counters;
    const r = vm.guest.report(vm.seq + 1, now - vm.startedMs, { curKib: d.actualKib, tgtKib: d.targetKib });
    const last = vm.lastPublished;
    // The agent writes on a significant change, and at least every heartbeat (not stale).
    const significant = !last || Math.abs(r.avail - last.avail) > 16 * MIB || Math.abs(r.commit - last.commit) > 16 * MIB
      || Math.abs((r.psi?.s10 ?? 0) - last.s10) > 1 || c.stallSomeUs - last.stot > 20_000
      || now - vm.lastPublishMs >= REPORT_HEARTBEAT_MS;
    if (!significant) return;
    vm.seq++;
    vm.lastPublishMs = now;
    vm.lastPublished = { avail: r.avail, commit: r.commit, s10: r.psi?.s10 ?? 0, stot: c.stallSomeUs };
    try {
      await this.o.guestXs(vm.domid).write(`/local/domain/${vm.domid}/data/xmem`, encodeGuestReport(r));
    } catch {
      // The domain went away meanwhile; nothing to report.
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  private at(atS: number, run: () => Promise<void> | void): void {
    this.events.push({ atMs: atS * 1000, run });
  }

  private balloonOf(spec: VmSpec): BalloonSpec {
    const b = spec.balloon;
    if (b === undefined) return BalloonSchema.parse({});
    return typeof b === 'string' ? this.o.scenario.balloons[b]! : b;
  }

  private async createVm(spec: VmSpec, domid: number): Promise<void> {
    const workload = this.o.scenario.workloads[spec.workload]!;
    const guest = new SimGuest({ gapKib: spec.gapMiB * MIB, swapKib: spec.swapMiB * MIB, coldCacheKib: workload.coldCacheMiB * MIB });
    await this.host.create({
      domid,
      name: spec.name,
      memoryKib: spec.memoryMiB * MIB,
      staticMaxKib: spec.maxMiB * MIB,
      balloon: this.balloonOf(spec),
      hardFloorKib: guest.overheadKib(),
    });
    const now = this.o.clock.now();
    this.vms.set(domid, {
      spec, domid, guest,
      player: new WorkloadPlayer(workload, this.rng.fork(spec.name)),
      startedMs: now, seq: 0, lastPublishMs: -Infinity, lastPublished: null,
      metrics: emptyVmMetrics(spec.name),
      pausedUntilMs: null,
    });
  }

  /** A VM start: ask admission for the memory (it squeezes others), then create the domain. */
  private async requestStart(spec: VmSpec): Promise<void> {
    const kib = spec.memoryMiB * MIB;
    const requestedMs = this.o.clock.now();
    const key = `${spec.name}@${requestedMs}`;
    this.inFlight.set(key, kib);
    const record = (refused: boolean, why: string) => this.starts.push({
      name: spec.name, atS: (requestedMs - this.beganMs) / 1000, latencyS: (this.o.clock.now() - requestedMs) / 1000, refused, why,
    });
    let d: Awaited<ReturnType<StartPort['reserve']>>;
    try {
      d = await this.o.admission.reserve(spec.name, kib);
    } finally {
      this.inFlight.delete(key);
    }
    if (!d.ok) {
      record(true, d.why);
      this.emit('refused', { name: spec.name, why: d.why });
      return;
    }
    if (kib > this.host.freeKib()) {
      // Admission said yes but the memory is not there: a broken promise, not a refusal.
      this.o.admission.release(d.id);
      record(true, `admitted but only ${Math.round(this.host.freeKib() / MIB)} MiB free`);
      this.host.violation('reservation-handed-out', -1, `${spec.name} admitted with ${Math.round(this.host.freeKib())} KiB free < ${kib}`);
      return;
    }
    await this.createVm(spec, this.nextDomid++);
    this.handedOver.push({ id: d.id, createdMs: this.o.clock.now() });
    record(false, '');
  }

  private byName(name: string): RunningVm | undefined {
    for (const vm of this.vms.values()) if (vm.spec.name === name) return vm;
    return undefined;
  }

  private async stopVm(name: string): Promise<void> {
    const vm = this.byName(name);
    if (!vm) return;
    this.vms.delete(vm.domid);
    this.gone.push(this.finish(vm));
    await this.host.destroy(vm.domid);
  }

  private setPaused(name: string, paused: boolean): void {
    const vm = this.byName(name);
    const d = vm && this.host.domains.get(vm.domid);
    if (!vm || !d) return;
    d.paused = paused;
    vm.pausedUntilMs = paused ? Infinity : null;
  }

  // ---- invariants and results ---------------------------------------------------------------

  private checkFloor(ev: { domid: number; kib: number; beforeKib: number | null; actualKib: number }): void {
    if (!this.o.decisions || ev.kib >= ev.actualKib) return;
    const d = this.o.decisions().find((x) => x.domid === ev.domid);
    if (d && d.managed && ev.kib < d.floorKib - MIB) {
      this.host.violation('below-floor', ev.domid, `target ${ev.kib} KiB below the policy's floor ${d.floorKib} KiB`);
    }
  }

  private finish(vm: RunningVm): VmMetrics {
    const c = vm.guest.counters;
    return {
      ...vm.metrics,
      stallSomeS: c.stallSomeUs / 1e6,
      stallFullS: c.stallFullUs / 1e6,
      oomKills: c.oomKills,
      swapOutMiB: c.swapOutKib / MIB,
    };
  }

  results(): SimResults {
    const vms = [...this.gone, ...[...this.vms.values()].map((vm) => this.finish(vm))];
    return {
      scenario: this.o.scenario.name,
      simulatedS: this.elapsedMs() / 1000,
      ticks: this.ticks,
      vms,
      starts: [...this.starts, ...[...this.inFlight.keys()].map((k) => ({ name: k.split('@')[0]!, atS: (Number(k.split('@')[1]) - this.beganMs) / 1000, latencyS: NaN, refused: false, why: 'still waiting for admission' }))],
      violations: [...this.host.violations],
      violationCounts: { ...this.host.violationCounts },
    };
  }

  /** Live per-VM view (the demo's plain table). */
  live(): { name: string; domid: number; actualKib: number; targetKib: number | null; needKib: number; stall: number; paused: boolean }[] {
    return [...this.vms.values()].map((vm) => {
      const d = this.host.domains.get(vm.domid)!;
      return { name: vm.spec.name, domid: vm.domid, actualKib: d.actualKib, targetKib: d.targetKib, needKib: vm.guest.needKib(), stall: vm.guest.stallFraction(), paused: d.paused };
    });
  }
}

/** Expands `count` copies (name-1…name-N), spreading their start times over spreadS. */
export function expand(vms: VmSpec[]): VmSpec[] {
  const out: VmSpec[] = [];
  for (const vm of vms) {
    if (vm.count === 1) {
      out.push(vm);
      continue;
    }
    for (let i = 0; i < vm.count; i++) {
      const offset = vm.count > 1 ? (vm.spreadS * i) / vm.count : 0;
      out.push({
        ...vm,
        name: `${vm.name}-${i + 1}`,
        count: 1,
        ...(vm.startS !== undefined ? { startS: vm.startS + offset } : {}),
        ...(vm.stopS !== undefined ? { stopS: vm.stopS + offset } : {}),
      });
    }
  }
  return out;
}
