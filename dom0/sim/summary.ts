import { totals, type SimResults } from './metrics.js';

/** The end-of-run report: totals, per-VM lines, starts and invariant breaches. */
export function renderResults(r: SimResults, policy: string): string {
  const t = totals(r);
  const f1 = (x: number) => x.toFixed(1);
  const lines = [
    `scenario ${r.scenario}, policy ${policy}, ${f1(r.simulatedS)} s simulated`,
    `stall some ${f1(t.stallSomeS)} s, full ${f1(t.stallFullS)} s; OOM kills ${t.oomKills}; swapped out ${Math.round(t.swapOutMiB)} MiB; idle ${Math.round(t.idleMiBs / 1024)} GiB·s`,
    `starts ${t.starts}, refused ${t.refused}, latency mean ${f1(t.startMeanS)} s, max ${f1(t.startMaxS)} s; invariant breaches ${t.violations}`,
    '',
    `${'VM'.padEnd(14)} ${'stall-some'.padStart(10)} ${'stall-full'.padStart(10)} ${'oom'.padStart(4)} ${'swapout'.padStart(8)} ${'idle'.padStart(9)}`,
  ];
  for (const v of r.vms) {
    lines.push(`${v.name.slice(0, 14).padEnd(14)} ${f1(v.stallSomeS).padStart(9)}s ${f1(v.stallFullS).padStart(9)}s ${String(v.oomKills).padStart(4)} ${String(Math.round(v.swapOutMiB)).padStart(7)}M ${String(Math.round(v.idleMiBs / 1024)).padStart(6)}G·s`);
  }
  for (const s of r.starts) if (s.refused) lines.push(`start of ${s.name} at ${f1(s.atS)} s refused: ${s.why}`);
  for (const v of r.violations.slice(0, 10)) lines.push(`invariant: ${v.kind} domid ${v.domid} at ${f1(v.atMs / 1000)} s: ${v.detail}`);
  return lines.join('\n');
}
