import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { renderFrame, type FrameInput } from '../../dom0/top/render.js';
import { palette } from '../../dom0/top/palette.js';
import { initialView, type ViewOptions } from '../../dom0/top/view.js';
import { fmtSize } from '../../dom0/top/format.js';
import { renderStatusTable } from '../../dom0/top/table.js';
import { VmFlagSchema, type HostState } from '../../src/schemas/state.js';
import { hostState, vm } from './fixtures.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const plain = (s: string): string => s.replace(ANSI, '');

const live = { state: 'live', where: '/run/xmem/state.sock' } as const;

function frame(over: Partial<Omit<FrameInput, 'view'>> & { view?: Partial<ViewOptions> } = {}): ReturnType<typeof renderFrame> & { text: string[] } {
  const state = over.state === undefined ? hostState() : over.state;
  const f = renderFrame({
    state,
    conn: live,
    size: { cols: 80, rows: 24 },
    nowMs: (state?.atMs ?? 0) + 1000,
    palette: palette(false),
    ...over,
    view: { ...initialView, ...over.view },
  });
  return { ...f, text: f.lines.map(plain) };
}

const rowNames = (text: string[]): string[] => {
  const head = text.findIndex((l) => l.startsWith('NAME'));
  return text.slice(head + 1).map((l) => l.split(/\s+/)[0]!).filter((n) => ['dom0', 'work', 'browser', 'anon'].includes(n));
};

describe('renderFrame layout', () => {
  for (const [cols, rows] of [[80, 24], [200, 50]] as const) {
    it(`fills exactly ${cols}x${rows}, host bar first, footer last, one row per VM`, () => {
      const f = frame({ size: { cols, rows }, palette: palette(true) });
      expect(f.lines).toHaveLength(rows);
      for (const l of f.text) expect(l.length).toBeLessThanOrEqual(cols);
      expect(f.text[0]).toMatch(/^policy xmem {2}total 16\.0G {2}free 2\.9G {2}reserved 0M {2}VMs 4 +\d\d:\d\d:\d\d \(1s ago\)$/);
      expect(f.text[1]).toContain('4 VMs, 1 under pressure, 1 stuck');
      expect(f.text[rows - 1]).toMatch(/^sort: memory \(m\/p\/n\)/);
      expect(rowNames(f.text)).toEqual(['dom0', 'browser', 'work', 'anon']);
    });
  }

  it('shows MAXMEM and AGE only where they fit, and never cuts the memory columns', () => {
    const narrow = frame({ size: { cols: 80, rows: 24 } }).text.find((l) => l.startsWith('NAME'))!;
    const wide = frame({ size: { cols: 200, rows: 50 } }).text.find((l) => l.startsWith('NAME'))!;
    for (const h of ['DOMID', 'ACTUAL', 'TARGET', 'IDEAL', 'FLOOR', 'PSI s/f', 'FLAGS', 'REASON']) {
      expect(narrow).toContain(h);
      expect(wide).toContain(h);
    }
    expect(narrow).not.toContain('MAXMEM');
    expect(wide).toContain('MAXMEM');
    expect(wide).toContain('AGE');
    const work = frame({ size: { cols: 200, rows: 50 } }).text.find((l) => l.startsWith('work'))!;
    expect(work.split(/\s+/).slice(0, 10)).toEqual(['work', '3', '2.0G', '2.4G', '2.5G', '400M', '4.0G', '2s', '22.5/4.3', '!']);
    expect(work).toContain('grow: psi some 22.5% above 10%');
  });

  it('sorts by memory, pressure and name', () => {
    expect(frame({ view: { sort: 'memory' } }).order).toEqual([0, 5, 3, 7]);
    expect(frame({ view: { sort: 'pressure' } }).order).toEqual([3, 5, 0, 7]);
    expect(frame({ view: { sort: 'name' } }).order).toEqual([7, 5, 0, 3]);
    expect(rowNames(frame({ view: { sort: 'name' } }).text)).toEqual(['anon', 'browser', 'dom0', 'work']);
  });

  it('opens a detail pane for the selected VM with its targets, newest first, and only its own', () => {
    const f = frame({ view: { selected: 3, detail: true } });
    const start = f.text.findIndex((l) => l.startsWith('-- work (domid 3) '));
    expect(start).toBeGreaterThan(0);
    const pane = f.text.slice(start, 23).join('\n');
    expect(pane).toContain('actual 2.0G  target 2.4G  ideal 2.5G  floor 400M  maxmem 4.0G');
    expect(pane).toContain('psi some 22.5%  full 4.3%');
    expect(pane).toContain('flags: pressure');
    const h1 = pane.indexOf('2.0G -> 2.4G');
    const h2 = pane.indexOf('1.8G -> 2.0G');
    expect(h1).toBeGreaterThan(0);
    expect(h2).toBeGreaterThan(h1);
    expect(pane).not.toContain('shrink: idle');
    // The pane sits at the bottom, just above the footer.
    expect(f.text[22]).not.toBe('');
  });

  it('wraps a long reason in the detail pane instead of cutting its end', () => {
    const reason = 'enough memory: demand 1.06G (ideal 1.12G = Committed_AS 936M + cache 150M + gap 60M) plus 2.02G of the 8.40G surplus, floor 500M; probing 12M below ideal';
    const f = frame({ state: hostState({ vms: [vm({ domid: 5, name: 'dev', reason })] }), view: { selected: 5, detail: true } });
    const start = f.text.findIndex((l) => l.startsWith('reason'));
    const joined = f.text.slice(start, start + 3).map((l) => l.trim()).join(' ');
    expect(joined).toContain('probing 12M below ideal');
    expect(joined.replace(/\s+/g, ' ')).toContain(reason);
  });

  it('shows a disconnect banner with the reason and countdown, and keeps the last data', () => {
    const s = hostState();
    const f = frame({ conn: { state: 'down', where: '/x', reason: 'the xmem service is not running', retryAtMs: s.atMs + 3000 }, size: { cols: 120, rows: 24 } });
    expect(f.text[0]).toMatch(/^ DISCONNECTED \(reconnecting in 2s\): the xmem service is not running; showing data from \d\d:\d\d:\d\d/);
    expect(rowNames(f.text)).toHaveLength(4);
    expect(frame({ conn: { state: 'down', where: '/x', reason: 'version', retryAtMs: null } }).text[0]).toContain('not retrying');
    expect(frame().text.some((l) => l.includes('DISCONNECTED'))).toBe(false);
    expect(frame({ state: null, conn: { state: 'connecting', where: '/y.sock' } }).text[0]).toContain('connecting to /y.sock');
  });

  it('uses colour only where it means something', () => {
    const f = frame({ palette: palette(true), view: { selected: 7 } });
    const row = (name: string): string => f.lines.find((l) => plain(l).startsWith(name))!;
    expect(row('browser')).toContain('\x1b[31mbrowser'); // stuck: red name
    expect(row('work')).toMatch(/\x1b\[33m +22\.5\/4\.3/); // pressure: yellow PSI
    expect(row('dom0')).not.toMatch(ANSI); // nothing wrong, no colour
    expect(row('anon')).toMatch(/^\x1b\[7m/); // the selection is inverse
    const below = frame({ palette: palette(true), state: hostState({ vms: [vm({ domid: 4, name: 'squeezed', actualKib: 300 * 1024, floorKib: 400 * 1024 })] }), view: { selected: 99 } });
    expect(below.lines.find((l) => plain(l).startsWith('squeezed'))).toMatch(/\x1b\[31m +300M/);
  });

  it('marks a snapshot older than 30s (the service loop is not running) in yellow', () => {
    const s = hostState();
    expect(frame({ palette: palette(true), nowMs: s.atMs + 5_000 }).lines[0]).not.toContain('\x1b[33m');
    expect(frame({ palette: palette(true), nowMs: s.atMs + 45_000 }).lines[0]).toMatch(/\x1b\[33m\d\d:\d\d:\d\d \(45s ago\)/);
  });

  it('scrolls to keep the selection visible when VMs outnumber rows', () => {
    const many: HostState = hostState({ vms: Array.from({ length: 30 }, (_, i) => vm({ domid: i + 1, name: `vm${String(i + 1).padStart(2, '0')}` })) });
    const f = frame({ state: many, view: { sort: 'name', selected: 27 } });
    expect(f.text.some((l) => l.startsWith('vm27 '))).toBe(true);
    expect(f.text.some((l) => l.startsWith('vm01 '))).toBe(false);
    expect(f.text.find((l) => l.includes(' of 30 '))).toMatch(/rows \d+-27 of 30/);
    expect(f.lines).toHaveLength(24);
  });

  it('shows help, says when the terminal is too small, and neutralises control characters', () => {
    expect(frame({ view: { help: true } }).text.join('\n')).toMatch(/S {2}stuck .*balloon is not reaching its target/);
    expect(frame({ size: { cols: 30, rows: 5 } }).text[0]).toContain('terminal too small');
    const evil = hostState({ vms: [vm({ domid: 9, name: 'x\x1b[2Jy', reason: 'r\nz' })] });
    const f = frame({ state: evil, palette: palette(true) });
    expect(f.lines.join('')).not.toContain('\x1b[2J');
    expect(f.text.some((l) => l.startsWith('x?[2Jy'))).toBe(true);
  });

  it('never exceeds the terminal, whatever the state and size (property)', () => {
    const arbVm = fc.record({
      domid: fc.integer({ min: 0, max: 32000 }),
      name: fc.string({ maxLength: 40 }),
      kib: fc.integer({ min: 0, max: 2 ** 40 }),
      flags: fc.subarray(VmFlagSchema.options),
      reason: fc.string({ maxLength: 300 }),
      psi: fc.option(fc.double({ min: 0, max: 100, noNaN: true })),
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 260 }), fc.integer({ min: 1, max: 90 }), fc.array(arbVm, { maxLength: 60 }), fc.boolean(), fc.boolean(), fc.option(fc.string({ maxLength: 400 })), (cols, rows, vms, detail, help, downReason) => {
        const state = hostState({ vms: vms.map((v) => vm({ domid: v.domid, name: v.name, actualKib: v.kib, targetKib: v.kib, flags: v.flags, reason: v.reason, psiSome10: v.psi, psiFull10: v.psi })) });
        const conn = downReason === null ? live : ({ state: 'down', where: '/s', reason: downReason, retryAtMs: null } as const);
        const f = frame({ state, conn, size: { cols, rows }, palette: palette(true), view: { detail, help, selected: vms[0]?.domid ?? null } });
        expect(f.lines).toHaveLength(rows);
        for (const l of f.lines) expect(plain(l).length).toBeLessThanOrEqual(cols);
      }),
      { numRuns: 300 },
    );
  });
});

describe('formatting and the status table', () => {
  it('sizes stay short and binary', () => {
    expect([0, 1023, 512 * 1024, 999 * 1024, 1000 * 1024, 1536 * 1024, 150 * 1024 * 1024, 2048 * 1024 * 1024].map(fmtSize)).toEqual([
      '0M', '1M', '512M', '999M', '1.0G', '1.5G', '150G', '2.0T',
    ]);
    expect(fmtSize(null)).toBe('-');
  });

  it('status lists every VM by name with every field and the whole reason', () => {
    const s = hostState({
      refusals: [{ atMs: Date.UTC(2026, 0, 1, 11, 59, 0), forName: 'big', neededKib: 8 << 20, reason: 'would push work below its floor' }],
      reservations: [{ id: 'r1', forName: 'sys-usb', kib: 1 << 20, sinceMs: Date.UTC(2026, 0, 1, 11, 59, 58), state: 'squeezing' }],
    });
    const out = renderStatusTable(s, s.atMs).split('\n');
    const head = out.findIndex((l) => l.startsWith('NAME'));
    expect(out[head]!.split(/\s+/)).toEqual(['NAME', 'DOMID', 'ACTUAL', 'TARGET', 'IDEAL', 'FLOOR', 'MAXMEM', 'PSI_SOME', 'PSI_FULL', 'AGE', 'SIGNAL', 'FLAGS', 'REASON']);
    expect(out.slice(head + 1, head + 5).map((l) => l.split(/\s+/)[0])).toEqual(['anon', 'browser', 'dom0', 'work']);
    expect(out[head + 2]!.split(/\s+/).slice(0, 12)).toEqual(['browser', '5', '2.9G', '1.5G', '1.4G', '400M', '4.0G', '5.0', '1.0', '1s', 'xmem', 'stuck']);
    expect(out[head + 2]).toMatch(/stuck: balloon did not move in 30s$/);
    expect(out.join('\n')).toContain('sys-usb  1.0G  squeezing  2s');
    expect(out.join('\n')).toMatch(/\d\d:\d\d:\d\d {2}big needed 8\.0G: would push work below its floor/);
  });
});
