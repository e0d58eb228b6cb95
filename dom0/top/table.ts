import type { HostState } from '../../src/schemas/state.js';
import { fmtAge, fmtClock, fmtPct, fmtSize, sanitize } from './format.js';
import { sortVms } from './sort.js';

/**
 * `xmem status` as text: every field, nothing cut (a script or a bug report wants it all),
 * columns aligned to their widest cell, VMs by name so two runs diff cleanly.
 */
export function renderStatusTable(state: HostState, nowMs: number): string {
  const h = state.host;
  const since = Math.max(0, nowMs - state.atMs);
  const lines = [
    `policy ${sanitize(state.policy)}  total ${fmtSize(h.totalKib)}  free ${fmtSize(h.freeKib)}  reserved ${fmtSize(h.reservedKib)}  at ${fmtClock(state.atMs)}`,
    sanitize(h.summary),
    '',
  ];
  const head = ['NAME', 'DOMID', 'ACTUAL', 'TARGET', 'IDEAL', 'FLOOR', 'MAXMEM', 'PSI_SOME', 'PSI_FULL', 'AGE', 'SIGNAL', 'FLAGS', 'REASON'];
  const rows = sortVms(state.vms, 'name').map((v) => [
    v.name,
    String(v.domid),
    fmtSize(v.actualKib),
    fmtSize(v.targetKib),
    fmtSize(v.idealKib),
    fmtSize(v.floorKib),
    fmtSize(v.maxmemKib),
    fmtPct(v.psiSome10),
    fmtPct(v.psiFull10),
    fmtAge(v.reportAgeMs === null ? null : v.reportAgeMs + since),
    v.signal,
    v.flags.join(',') || '-',
    v.reason,
  ].map(sanitize));
  const left = new Set([0, 10, 11, 12]);
  const widths = head.map((t, i) => Math.max(t.length, ...rows.map((r) => r[i]!.length)));
  const fmtRow = (r: string[]): string =>
    r.map((c, i) => (i === r.length - 1 ? c : left.has(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push(fmtRow(head), ...rows.map(fmtRow));
  if (state.reservations.length) {
    lines.push('', 'reservations:');
    for (const r of state.reservations) lines.push(`  ${sanitize(r.id)}  ${sanitize(r.forName)}  ${fmtSize(r.kib)}  ${r.state}  ${fmtAge(nowMs - r.sinceMs)}`);
  }
  if (state.refusals.length) {
    lines.push('', 'recent refusals:');
    for (const r of [...state.refusals].sort((a, b) => b.atMs - a.atMs)) {
      lines.push(`  ${fmtClock(r.atMs)}  ${sanitize(r.forName)} needed ${fmtSize(r.neededKib)}: ${sanitize(r.reason)}`);
    }
  }
  return lines.join('\n') + '\n';
}
