import { Counter, Gauge, Registry } from 'prom-client';
import type { DecisionLog, HostState } from '../../src/schemas/state.js';

/**
 * Prometheus view of the state stream. Gauges are rebuilt from the state at each scrape (so a VM that is
 * gone disappears instead of freezing at its last value); counters count the source's decision
 * and refusal events, each once (the state only carries a recent window, which may slide by
 * more than a scrape interval's worth).
 * Units follow Prometheus conventions: bytes, seconds, ratios (PSI percent / 100).
 */
export class StateMetrics {
  readonly registry = new Registry();
  private readonly vmLabels = ['vm', 'domid'] as const;
  private readonly vmActual = this.vmGauge('xmem_vm_actual_bytes', 'Memory the VM has now');
  private readonly vmTarget = this.vmGauge('xmem_vm_target_bytes', 'Balloon target xmem set');
  private readonly vmIdeal = this.vmGauge('xmem_vm_ideal_bytes', 'Size the policy would like the VM to have');
  private readonly vmFloor = this.vmGauge('xmem_vm_floor_bytes', 'Size xmem never squeezes the VM below');
  private readonly vmMaxmem = this.vmGauge('xmem_vm_maxmem_bytes', 'Xen maxmem of the VM');
  private readonly vmPsiSome = this.vmGauge('xmem_vm_psi_some_avg10_ratio', 'Guest memory PSI some avg10 (0..1)');
  private readonly vmPsiFull = this.vmGauge('xmem_vm_psi_full_avg10_ratio', 'Guest memory PSI full avg10 (0..1)');
  private readonly vmReportAge = this.vmGauge('xmem_vm_report_age_seconds', 'Age of the last valid guest report');
  private readonly vmFlag = new Gauge({
    name: 'xmem_vm_flag',
    help: '1 for each flag a VM has (stuck, paused, no-agent, pressure, ...)',
    labelNames: ['vm', 'domid', 'flag'],
    registers: [this.registry],
  });
  private readonly hostTotal = this.hostGauge('xmem_host_total_bytes', 'Host memory Xen manages');
  private readonly hostFree = this.hostGauge('xmem_host_free_bytes', 'Host memory free in Xen');
  private readonly hostReserved = this.hostGauge('xmem_host_reserved_bytes', 'Memory held for VM starts (reservations)');
  private readonly vmCount = this.hostGauge('xmem_vms', 'VMs xmem sees');
  private readonly reservations = this.hostGauge('xmem_reservations', 'Live reservations');
  private readonly snapshotTime = this.hostGauge('xmem_state_timestamp_seconds', 'Wall-clock time of the last state snapshot');
  private readonly decisions = new Counter({
    name: 'xmem_decisions_total',
    help: 'Target changes xmem made, by VM and direction',
    labelNames: ['vm', 'direction'],
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: 'xmem_refusals_total',
    help: 'VM starts (reservations) refused',
    registers: [this.registry],
  });

  /** A target change (the source's 'decision' event). */
  countDecision(d: DecisionLog): void {
    const direction = d.fromKib === null || d.toKib > d.fromKib ? 'grow' : d.toKib < d.fromKib ? 'shrink' : 'hold';
    this.decisions.inc({ vm: d.name, direction });
  }

  /** A refused VM start (the source's 'refusal' event). */
  countRefusal(): void {
    this.refusals.inc();
  }

  /** The exposition text, gauges set from `state` (the source's current one; null before the first pass). */
  async text(state: HostState | null): Promise<string> {
    if (state) this.setGauges(state);
    return this.registry.metrics();
  }

  private setGauges(state: HostState): void {
    for (const g of [this.vmActual, this.vmTarget, this.vmIdeal, this.vmFloor, this.vmMaxmem, this.vmPsiSome, this.vmPsiFull, this.vmReportAge, this.vmFlag]) {
      g.reset();
    }
    for (const vm of state.vms) {
      const labels = { vm: vm.name, domid: String(vm.domid) };
      setKib(this.vmActual, labels, vm.actualKib);
      setKib(this.vmTarget, labels, vm.targetKib);
      setKib(this.vmIdeal, labels, vm.idealKib);
      setKib(this.vmFloor, labels, vm.floorKib);
      setKib(this.vmMaxmem, labels, vm.maxmemKib);
      if (vm.psiSome10 !== null) this.vmPsiSome.set(labels, vm.psiSome10 / 100);
      if (vm.psiFull10 !== null) this.vmPsiFull.set(labels, vm.psiFull10 / 100);
      if (vm.reportAgeMs !== null) this.vmReportAge.set(labels, vm.reportAgeMs / 1000);
      for (const flag of vm.flags) this.vmFlag.set({ ...labels, flag }, 1);
    }
    this.hostTotal.set(state.host.totalKib * 1024);
    this.hostFree.set(state.host.freeKib * 1024);
    this.hostReserved.set(state.host.reservedKib * 1024);
    this.vmCount.set(state.vms.length);
    this.reservations.set(state.reservations.length);
    this.snapshotTime.set(state.atMs / 1000);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private vmGauge(name: string, help: string): Gauge<'vm' | 'domid'> {
    return new Gauge({ name, help, labelNames: this.vmLabels, registers: [this.registry] });
  }

  private hostGauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }
}

function setKib(g: Gauge<'vm' | 'domid'>, labels: { vm: string; domid: string }, kib: number | null): void {
  if (kib !== null) g.set(labels, kib * 1024);
}
