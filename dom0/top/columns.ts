import type { VmState } from '../../src/schemas/state.js';
import { flagLetters } from './flags.js';
import { fmtAge, fmtPsi, fmtSize } from './format.js';
import type { Palette, Style } from './palette.js';

export interface CellContext {
  /** Milliseconds since the snapshot was taken, added to report ages so they keep counting. */
  sinceSnapshotMs: number;
  palette: Palette;
}

export interface Column {
  id: string;
  title: string;
  width: number;
  align: 'left' | 'right';
  text(vm: VmState, ctx: CellContext): string;
  /** A style only when the value means something is off. */
  style?(vm: VmState, ctx: CellContext): Style | undefined;
}

const belowFloor = (vm: VmState): boolean => vm.floorKib !== null && vm.actualKib < vm.floorKib;
const notRunning = (vm: VmState): boolean => vm.flags.includes('paused') || vm.flags.includes('dying');

const size = (id: string, title: string, get: (vm: VmState) => number | null): Column => ({
  id,
  title,
  width: 6,
  align: 'right',
  text: (vm) => fmtSize(get(vm)),
});

export const nameColumn = (width: number): Column => ({
  id: 'name',
  title: 'NAME',
  width,
  align: 'left',
  text: (vm) => vm.name,
  style: (vm, { palette }) => (vm.flags.includes('stuck') ? palette.alarm : notRunning(vm) ? palette.quiet : undefined),
});

export const DOMID: Column = { id: 'domid', title: 'DOMID', width: 5, align: 'right', text: (vm) => String(vm.domid) };
export const ACTUAL: Column = {
  ...size('actual', 'ACTUAL', (vm) => vm.actualKib),
  style: (vm, { palette }) => (belowFloor(vm) ? palette.alarm : undefined),
};
export const TARGET = size('target', 'TARGET', (vm) => vm.targetKib);
export const IDEAL = size('ideal', 'IDEAL', (vm) => vm.idealKib);
export const FLOOR = size('floor', 'FLOOR', (vm) => vm.floorKib);
export const MAXMEM = size('maxmem', 'MAXMEM', (vm) => vm.maxmemKib);
export const PSI: Column = {
  id: 'psi',
  title: 'PSI s/f',
  width: 9,
  align: 'right',
  text: (vm) => fmtPsi(vm.psiSome10, vm.psiFull10),
  style: (vm, { palette }) => (vm.flags.includes('pressure') ? palette.warn : undefined),
};
export const AGE: Column = {
  id: 'age',
  title: 'AGE',
  width: 5,
  align: 'right',
  text: (vm, { sinceSnapshotMs }) => fmtAge(vm.reportAgeMs === null ? null : vm.reportAgeMs + sinceSnapshotMs),
  style: (vm, { palette }) => (vm.flags.includes('stale') ? palette.warn : undefined),
};
export const FLAGS: Column = {
  id: 'flags',
  title: 'FLAGS',
  width: 5,
  align: 'left',
  text: (vm) => flagLetters(vm.flags),
  style: (vm, { palette }) =>
    vm.flags.includes('stuck') || vm.flags.includes('bad-report') ? palette.alarm : vm.flags.includes('pressure') || vm.flags.includes('stale') ? palette.warn : undefined,
};
export const reasonColumn = (width: number): Column => ({ id: 'reason', title: 'REASON', width, align: 'left', text: (vm) => vm.reason });

const REASON_MIN = 10;
/** Optional columns join, most useful first, while the reason keeps this much room. */
const REASON_COMFORT = 24;

/**
 * Chooses the columns for a terminal width: the memory figures, PSI and flags always; MAXMEM and
 * AGE when there is room (the detail pane always has them); NAME sized to the longest name
 * (8..24); REASON takes what is left. The row never exceeds `cols`.
 */
export function layoutColumns(cols: number, vms: readonly VmState[]): Column[] {
  const longest = Math.max(4, ...vms.map((v) => v.name.length));
  let nameWidth = Math.min(24, Math.max(8, longest));
  const core = [DOMID, ACTUAL, TARGET, IDEAL, FLOOR];
  const tail = [PSI, FLAGS];
  const optional = [MAXMEM, AGE];
  const used = (cs: Column[]): number => nameWidth + cs.reduce((n, c) => n + 1 + c.width, 0) + 1; // +1: space before REASON
  let chosen = [...core, ...tail];
  for (const opt of optional) {
    const trial = [...core, ...chosen.filter((c) => !core.includes(c) && !tail.includes(c)), opt, ...tail];
    if (cols - used(trial) >= REASON_COMFORT) chosen = trial;
  }
  const spare = cols - used(chosen);
  if (spare < REASON_MIN) nameWidth = Math.max(6, nameWidth - (REASON_MIN - spare));
  // Below ~60 columns even the core does not fit: shed the least telling figures first.
  for (const drop of [IDEAL, FLOOR, DOMID, FLAGS, PSI, TARGET]) {
    if (used(chosen) - 1 <= cols) break;
    chosen = chosen.filter((c) => c !== drop);
  }
  nameWidth = Math.max(1, Math.min(nameWidth, nameWidth + cols - (used(chosen) - 1)));
  const reasonWidth = Math.max(0, cols - used(chosen));
  return [nameColumn(nameWidth), ...chosen, ...(reasonWidth > 0 ? [reasonColumn(reasonWidth)] : [])];
}
