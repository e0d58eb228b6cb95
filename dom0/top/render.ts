import type { HostState, VmState } from '../../src/schemas/state.js';
import { layoutColumns, type CellContext, type Column } from './columns.js';
import type { ConnStatus } from './conn.js';
import { FLAG_LETTERS, FLAG_MEANINGS } from './flags.js';
import { fit, fmtAge, fmtClock, fmtPct, fmtSize, sanitize } from './format.js';
import type { Palette } from './palette.js';
import { sortVms } from './sort.js';
import type { ViewOptions } from './view.js';

export interface FrameInput {
  /** The state on screen (the shell keeps the old one while paused or disconnected). */
  state: HostState | null;
  view: ViewOptions;
  size: { cols: number; rows: number };
  conn: ConnStatus;
  /** Wall-clock now, for ages and the reconnect countdown. */
  nowMs: number;
  /** A transient problem worth showing (e.g. an invalid snapshot was dropped). */
  notice?: string | null;
  palette: Palette;
}

export interface Frame {
  /** Exactly size.rows lines, none wider than size.cols visible columns. */
  lines: string[];
  /** Domids in displayed order and the table's height: what key handling needs. */
  order: number[];
  tableRows: number;
}

export const MIN_COLS = 40;
export const MIN_ROWS = 8;
const STALE_SNAPSHOT_MS = 30_000;

/** The whole screen as a pure function of the data, the viewer's choices and the terminal size. */
export function renderFrame(input: FrameInput): Frame {
  const { cols, rows } = input.size;
  const p = input.palette;
  if (cols < MIN_COLS || rows < MIN_ROWS) {
    const msg = fit(`xmem top: terminal too small (${cols}x${rows}; need ${MIN_COLS}x${MIN_ROWS})`, Math.max(cols, 0));
    return { lines: pad([msg], rows), order: [], tableRows: 0 };
  }
  const state = input.state;
  const vms = state ? sortVms(state.vms, input.view.sort) : [];
  const order = vms.map((v) => v.domid);

  const top: string[] = [];
  top.push(...bannerLines(input, cols));
  if (input.notice) top.push(p.bannerWarn(fit(` ${input.notice}`, cols)));
  top.push(...hostLines(input, cols));

  const footer = footerLine(input, cols);
  let body = rows - top.length - 1;
  const lines = [...top];
  let tableRows = 0;

  if (input.view.help) {
    lines.push(...helpLines(cols, body, p));
  } else if (!state) {
    lines.push(fit(input.conn.state === 'down' ? '' : '  waiting for the first snapshot...', cols));
  } else {
    const selectedVm = vms.find((v) => v.domid === input.view.selected) ?? null;
    const detail = input.view.detail && selectedVm ? detailLines(selectedVm, state, input, cols, Math.min(Math.max(8, Math.floor(body / 2)), body - 3)) : [];
    body -= detail.length;
    const ctx: CellContext = { sinceSnapshotMs: input.view.paused ? 0 : Math.max(0, input.nowMs - state.atMs), palette: p };
    const columns = layoutColumns(cols, vms);
    tableRows = Math.max(0, body - 1);
    lines.push(p.header(fit(columns.map((c) => fit(c.title, c.width, c.align)).join(' '), cols)));
    // The table fills its area so the detail pane sits at the bottom, like a pane, not a list item.
    lines.push(...pad(tableLines(vms, columns, ctx, input.view.selected, tableRows, cols), tableRows));
    lines.push(...detail);
  }
  const out = pad(lines, rows - 1).slice(0, rows - 1);
  out.push(footer);
  return { lines: out, order, tableRows };
}

function pad(lines: string[], rows: number): string[] {
  const out = lines.slice(0, rows);
  while (out.length < rows) out.push('');
  return out;
}

/** The connection banner, wrapped onto a second line rather than cutting the reason. */
function bannerLines({ conn, nowMs, state, palette: p }: FrameInput, cols: number): string[] {
  if (conn.state === 'live') return [];
  if (conn.state === 'connecting') return [p.bannerWarn(fit(` connecting to ${conn.where} ...`, cols))];
  const retry = conn.retryAtMs === null ? 'not retrying' : `reconnecting in ${fmtAge(Math.max(0, conn.retryAtMs - nowMs))}`;
  const stale = state ? `; showing data from ${fmtClock(state.atMs)}` : '';
  return wrap(` DISCONNECTED (${retry}): ${conn.reason}${stale}`, cols, 2).map((l) => p.bannerAlarm(fit(l, cols)));
}

export function wrap(text: string, cols: number, maxLines: number): string[] {
  const out: string[] = [];
  let rest = sanitize(text);
  while (rest.length > cols && out.length < maxLines - 1) {
    const cut = rest.lastIndexOf(' ', cols);
    const at = cut > cols / 2 ? cut : cols;
    out.push(rest.slice(0, at));
    rest = ' ' + rest.slice(at).trimStart();
  }
  out.push(rest);
  return out;
}

function hostLines({ state, view, nowMs, palette: p }: FrameInput, cols: number): string[] {
  if (!state) return [fit('xmem top', cols), '', ''];
  const h = state.host;
  const left = `policy ${state.policy}  total ${fmtSize(h.totalKib)}  free ${fmtSize(h.freeKib)}  reserved ${fmtSize(h.reservedKib)}  VMs ${state.vms.length}`;
  const right = `${fmtClock(state.atMs)} ${view.paused ? '(paused)' : `(${fmtAge(nowMs - state.atMs)} ago)`}`;
  const gap = cols - left.length - right.length;
  // Passes come every few seconds; a snapshot this old means the service's loop is not running.
  const old = !view.paused && nowMs - state.atMs > STALE_SNAPSHOT_MS;
  const line1 = gap >= 2 ? sanitize(left) + ' '.repeat(gap) + (old ? p.warn(right) : right) : fit(left, cols);

  const line2 = fit(state.host.summary, cols);

  const res = state.reservations.length
    ? state.reservations.map((r) => `${r.forName} ${fmtSize(r.kib)} ${r.state} ${fmtAge(nowMs - r.sinceMs)}`).join(', ')
    : 'none';
  const ref = state.refusals.reduce<HostState['refusals'][number] | null>((a, r) => (a === null || r.atMs > a.atMs ? r : a), null);
  const refText = ref ? `${fmtClock(ref.atMs)} ${ref.forName} needed ${fmtSize(ref.neededKib)}: ${ref.reason}` : 'none';
  const resPart = fit(`reservations: ${res}`, Math.min(cols, Math.max(24, Math.floor(cols / 2))));
  const refPart = fit(`  last refusal: ${refText}`, cols - resPart.length);
  // A refusal is what an admin opens top to explain: it is the one thing on this line in colour.
  const line3 = resPart + (ref && nowMs - ref.atMs < 5 * 60_000 ? p.alarm(refPart) : refPart);
  return [line1, line2, line3];
}

function tableLines(vms: VmState[], columns: Column[], ctx: CellContext, selected: number | null, height: number, cols: number): string[] {
  if (height <= 0) return [];
  if (vms.length === 0) return [fit('  no VMs', cols)];
  const at = Math.max(0, vms.findIndex((v) => v.domid === selected));
  // Scroll just enough to keep the selection on screen, with a row for "more" when cut.
  const fitsAll = vms.length <= height;
  const visible = fitsAll ? height : height - 1;
  const start = fitsAll ? 0 : Math.min(Math.max(0, at - visible + 1), vms.length - visible);
  const out = vms.slice(start, start + visible).map((vm) => {
    const cells = columns.map((c) => {
      const text = fit(c.text(vm, ctx), c.width, c.align);
      const style = vm.domid === selected ? undefined : c.style?.(vm, ctx);
      return style ? style(text) : text;
    });
    const line = cells.join(' ');
    return vm.domid === selected ? ctx.palette.selected(markSelectedAlarm(line, vm, ctx)) : line;
  });
  if (!fitsAll) out.push(ctx.palette.quiet(fit(`  rows ${start + 1}-${start + visible} of ${vms.length} (up/down, PgUp/PgDn)`, cols)));
  return out;
}

// Inverse video hides colour meaning on the selected row; keep "stuck" visible as red text.
function markSelectedAlarm(line: string, vm: VmState, ctx: CellContext): string {
  return vm.flags.includes('stuck') ? ctx.palette.alarm(line) : line;
}

function detailLines(vm: VmState, state: HostState, input: FrameInput, cols: number, height: number): string[] {
  if (height < 4) return [];
  const p = input.palette;
  const since = input.view.paused ? 0 : Math.max(0, input.nowMs - state.atMs);
  const title = `-- ${vm.name} (domid ${vm.domid}) `;
  const out = [p.header(fit(title + '-'.repeat(Math.max(0, cols - title.length)), cols))];
  out.push(
    fit(
      `actual ${fmtSize(vm.actualKib)}  target ${fmtSize(vm.targetKib)}  ideal ${fmtSize(vm.idealKib)}  floor ${fmtSize(vm.floorKib)}  maxmem ${fmtSize(vm.maxmemKib)}`,
      cols,
    ),
  );
  const report = vm.reportAgeMs === null ? 'no report' : `report ${fmtAge(vm.reportAgeMs + since)} old`;
  const flags = vm.flags.length ? vm.flags.join(', ') : 'none';
  out.push(fit(`psi some ${fmtPct(vm.psiSome10)}%  full ${fmtPct(vm.psiFull10)}%  ${report}  signal ${vm.signal}  flags: ${flags}`, cols));
  const when = vm.reasonAtMs === null ? '' : ` (${fmtClock(vm.reasonAtMs)}, ${fmtAge(input.nowMs - vm.reasonAtMs)} ago)`;
  // Reasons carry the policy's arithmetic; wrap them rather than cut the end, which is the point.
  out.push(...wrap(`reason${when}: ${vm.reason}`, cols, 3).map((l) => fit(l, cols)));
  const history = state.decisions.filter((d) => d.domid === vm.domid).sort((a, b) => b.atMs - a.atMs);
  out.push(fit(`target history (newest first, ${history.length} in the recent window):`, cols));
  if (history.length === 0) out.push(fit('  no target changes in the recent window', cols));
  for (const d of history) {
    out.push(fit(`  ${fmtClock(d.atMs)}  ${fmtSize(d.fromKib).padStart(6)} -> ${fmtSize(d.toKib).padEnd(6)}  ${d.reason}`, cols));
  }
  return out.slice(0, height);
}

const HELP: [string, string][] = [
  ['m / p / n', 'sort by memory, by pressure (PSI some), by name'],
  ['up/down, j/k', 'select a VM (PgUp/PgDn, Home/End jump)'],
  ['Enter', 'detail pane: all figures, target history, reasons'],
  ['Esc', 'close the detail pane or this help'],
  ['space', 'pause/resume the display'],
  ['h or ?', 'this help'],
  ['q, Ctrl-C', 'quit'],
];

function helpLines(cols: number, height: number, p: Palette): string[] {
  const out = [p.header(fit(' xmem top: help (h, Esc or Enter to close)', cols)), ''];
  for (const [k, what] of HELP) out.push(fit(`  ${k.padEnd(14)} ${what}`, cols));
  out.push('', fit('  FLAGS column:', cols));
  for (const [flag, letter] of Object.entries(FLAG_LETTERS)) {
    out.push(fit(`    ${letter}  ${flag.padEnd(11)} ${FLAG_MEANINGS[flag as keyof typeof FLAG_LETTERS]}`, cols));
  }
  out.push('', fit('  red: stuck, below floor, bad report, refusal; yellow: pressure, stale', cols));
  out.push(fit('  M = MiB, G = GiB; PSI s/f = guest memory PSI some/full avg10 (%)', cols));
  return out.slice(0, height);
}

function footerLine({ view, palette: p }: FrameInput, cols: number): string {
  const text = `sort: ${view.sort} (m/p/n)  up/down  Enter detail  space pause  h help  q quit`;
  if (!view.paused) return fit(text, cols);
  const tag = ' PAUSED ';
  return p.bannerWarn(tag) + fit(' ' + text, cols - tag.length);
}
