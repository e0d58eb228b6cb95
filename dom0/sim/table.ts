import type { Simulation } from './simulation.js';

/** The plain periodic table (no terminal UI): one line per VM, for logs and pipes. */
export function renderPlainTable(sim: Simulation, policy: string): string {
  const mib = (kib: number | null) => (kib === null ? '-' : String(Math.round(kib / 1024)));
  const host = sim.host;
  const lines = [
    `t=${(sim.elapsedMs() / 1000).toFixed(0)}s policy=${policy} total=${mib(host.totalKib)}M free=${mib(host.freeKib())}M reserved=${mib(sim.reservations().reduce((s, r) => s + r.kib, 0))}M`,
    `${'VM'.padEnd(14)} ${'domid'.padStart(5)} ${'actual'.padStart(7)} ${'target'.padStart(7)} ${'need'.padStart(7)} ${'stall'.padStart(6)}`,
  ];
  for (const v of sim.live()) {
    lines.push(`${v.name.slice(0, 14).padEnd(14)} ${String(v.domid).padStart(5)} ${mib(v.actualKib).padStart(6)}M ${mib(v.targetKib).padStart(6)}M ${mib(v.needKib).padStart(6)}M ${(v.stall * 100).toFixed(0).padStart(5)}%${v.paused ? ' paused' : ''}`);
  }
  return lines.join('\n');
}
