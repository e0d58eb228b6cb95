/**
 * `npm run bench -- policies [--scenario NAME]… [--policy P]…`: every scenario in
 * dom0/sim/scenarios × every policy, on the virtual clock with each scenario's own seed (so
 * every policy faces the very same workloads), through the real Manager on the simulated host.
 *
 * Columns: guest stall-seconds (PSI some/full totals; stall% = some per VM-second run, fair when
 * policies admit different numbers of VMs), OOM kills, MiB swapped out, memory held
 * idle (GiB·s of allocation above each guest's need), starts refused, start latency, and the
 * invariant breaches the simulated host recorded.
 * Last line: RESULT policies stall_ratio_vs_qmemman=… refusals_xmem=… refusals_qmemman=…
 * idle_ratio_vs_qmemman=… (ratios over the sums across all scenarios).
 */
import { parseArgs } from 'node:util';
import { POLICIES } from '../src/policy/config.js';
import { totals, type Totals } from '../dom0/sim/metrics.js';
import { runScenario } from '../dom0/sim/run.js';
import { listScenarios, loadScenario } from '../dom0/sim/scenario.js';

export default async function policies(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { scenario: { type: 'string', multiple: true }, policy: { type: 'string', multiple: true } },
    strict: true,
  });
  const scenarios = values.scenario ?? (await listScenarios());
  const policyNames = values.policy ?? [...POLICIES];
  const sums = new Map<string, Totals>();

  const head = `${'scenario'.padEnd(15)} ${'policy'.padEnd(9)} ${'stall-some'.padStart(10)} ${'stall-full'.padStart(10)} ${'stall%'.padStart(6)} ${'oom'.padStart(4)} ${'swap-MB'.padStart(8)} ${'idle-GB·s'.padStart(10)} ${'refused'.padStart(8)} ${'start-mean'.padStart(10)} ${'start-max'.padStart(9)} ${'breaches'.padStart(8)} ${'wall'.padStart(6)}`;
  process.stdout.write(head + '\n' + '-'.repeat(head.length) + '\n');
  for (const name of scenarios) {
    const scenario = await loadScenario(name);
    for (const policy of policyNames) {
      const t0 = performance.now();
      const t = totals(await runScenario(scenario, policy));
      const wall = (performance.now() - t0) / 1000;
      const s = sums.get(policy) ?? { ...t, stallSomeS: 0, stallFullS: 0, oomKills: 0, swapOutMiB: 0, idleMiBs: 0, starts: 0, refused: 0, startMeanS: 0, startMaxS: 0, violations: 0, vmSeconds: 0, stallPct: 0 };
      for (const k of ['stallSomeS', 'stallFullS', 'oomKills', 'swapOutMiB', 'idleMiBs', 'starts', 'refused', 'violations', 'vmSeconds'] as const) s[k] += t[k];
      s.stallPct = s.vmSeconds > 0 ? (100 * s.stallSomeS) / s.vmSeconds : 0;
      s.startMaxS = Math.max(s.startMaxS, t.startMaxS);
      sums.set(policy, s);
      process.stdout.write(`${name.padEnd(15)} ${policy.padEnd(9)} ${t.stallSomeS.toFixed(1).padStart(10)} ${t.stallFullS.toFixed(1).padStart(10)} ${t.stallPct.toFixed(2).padStart(6)} ${String(t.oomKills).padStart(4)} ${String(Math.round(t.swapOutMiB * 1.048576)).padStart(8)} ${(t.idleMiBs * 1.048576 / 1000).toFixed(0).padStart(10)} ${`${t.refused}/${t.starts}`.padStart(8)} ${(t.startMeanS.toFixed(2) + 's').padStart(10)} ${(t.startMaxS.toFixed(2) + 's').padStart(9)} ${String(t.violations).padStart(8)} ${(wall.toFixed(1) + 's').padStart(6)}\n`);
    }
  }
  process.stdout.write('\n');
  for (const [policy, s] of sums) {
    process.stdout.write(`all scenarios  ${policy.padEnd(9)} stall some ${s.stallSomeS.toFixed(1)} s (${s.stallPct.toFixed(2)}% of ${Math.round(s.vmSeconds)} VM-s), full ${s.stallFullS.toFixed(1)} s; OOM ${s.oomKills}; swap ${Math.round(s.swapOutMiB * 1.048576)} MB; idle ${(s.idleMiBs * 1.048576 / 1000).toFixed(0)} GB·s; refused ${s.refused}/${s.starts}; breaches ${s.violations}\n`);
  }
  const x = sums.get('xmem');
  const q = sums.get('qmemman');
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(3) : a > 0 ? 'inf' : '1.000');
  if (!x || !q) {
    process.stdout.write('RESULT policies incomplete=1 (needs both xmem and qmemman)\n');
    return;
  }
  process.stdout.write(`RESULT policies stall_ratio_vs_qmemman=${ratio(x.stallSomeS, q.stallSomeS)} refusals_xmem=${x.refused} refusals_qmemman=${q.refused} idle_ratio_vs_qmemman=${ratio(x.idleMiBs, q.idleMiBs)} full_stall_ratio_vs_qmemman=${ratio(x.stallFullS, q.stallFullS)} stall_pct_xmem=${x.stallPct.toFixed(3)} stall_pct_qmemman=${q.stallPct.toFixed(3)} oom_xmem=${x.oomKills} oom_qmemman=${q.oomKills} breaches_xmem=${x.violations} breaches_qmemman=${q.violations}\n`);
}
