/**
 * `xmem top` in a real terminal: tmux runs the real CLI against the real state server (fed by a
 * stand-in for the manager), send-keys types, capture-pane reads the screen.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { startStateServer, type StateServer } from '../../dom0/state/server.js';
import { FakeSource, hostState, vm } from './fixtures.js';
import { tempDir } from './helpers.js';
import { Tmux, tmuxSkipReason } from './tmux.js';

const skip = tmuxSkipReason();
if (skip && process.env.CI === 'true') throw new Error(`xmem top terminal tests cannot run in CI: ${skip}`);
if (skip) console.warn(`\n!!! SKIPPING xmem top terminal tests: ${skip}\n`);

const header = (screen: string[]): number => screen.findIndex((l) => l.startsWith('NAME '));
const names = (screen: string[]): string[] =>
  screen
    .slice(header(screen) + 1)
    .map((l) => l.split(/\s+/)[0]!)
    .filter((n) => ['dom0', 'work', 'browser', 'anon'].includes(n));
const has = (text: string) => (screen: string[]): boolean => screen.some((l) => l.includes(text));

describe.skipIf(skip !== null)('xmem top in a real terminal (tmux)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let tmux: Tmux;
  let sock: string;
  let source: FakeSource;
  let server: StateServer | null = null;
  // The shell reports top's exit status on the normal screen once top has given it back, and
  // stays (tmux may drop a dying pane's last output); kill-server hangs it up at the end.
  const cmd = (socketPath = sock): string =>
    `sh -c 'node --import tsx dom0/cli.ts top --socket ${socketPath}; echo "top exited with $?"; exec sleep 600'`;

  beforeAll(async () => {
    tmp = await tempDir();
    sock = path.join(tmp.dir, 'state.sock');
    source = new FakeSource(hostState({ atMs: Date.now() }));
    server = await startStateServer(source, { socketPath: sock });
    tmux = new Tmux(tmp.dir);
    await tmux.start('small', 80, 24, cmd(), { TZ: 'UTC' });
    await tmux.start('large', 200, 50, cmd(), { TZ: 'UTC' });
  });
  afterAll(async () => {
    await tmux?.kill();
    await server?.close();
    await tmp?.cleanup();
  });

  it('lays out 80x24: host bar, header, one row per VM by memory, footer on the last row', async () => {
    const s = await tmux.waitFor('small', 'the VM table', (x) => names(x).length === 4);
    expect(s).toHaveLength(24);
    expect(await tmux.display('small', '#{pane_width}x#{pane_height}')).toBe('80x24');
    for (const l of s) expect(l.length).toBeLessThanOrEqual(80);
    expect(s[0]).toMatch(/^policy xmem {2}total 16\.0G {2}free 2\.9G {2}reserved 0M {2}VMs 4 +\d\d:\d\d:\d\d \(/);
    expect(s[1]).toBe('4 VMs, 1 under pressure, 1 stuck');
    expect(s[3]).toMatch(/^NAME +DOMID ACTUAL TARGET +IDEAL +FLOOR +PSI s\/f FLAGS REASON/);
    expect(names(s)).toEqual(['dom0', 'browser', 'work', 'anon']);
    expect(s.find((l) => l.startsWith('work'))!.split(/\s+/).slice(0, 8)).toEqual(['work', '3', '2.0G', '2.4G', '2.5G', '400M', '22.5/4.3', '!']);
    expect(s[23]).toMatch(/^sort: memory \(m\/p\/n\)/);
  });

  it('lays out 200x50 with every column', async () => {
    const s = await tmux.waitFor('large', 'the VM table', (x) => names(x).length === 4);
    expect(s).toHaveLength(50);
    expect(s[3]).toMatch(/^NAME +DOMID ACTUAL TARGET +IDEAL +FLOOR MAXMEM +AGE +PSI s\/f FLAGS REASON/);
    expect(s.find((l) => l.startsWith('browser'))).toMatch(/stuck: balloon did not move in 30s$/);
    expect(s[49]).toMatch(/^sort: memory/);
  });

  it('colours a stuck VM red and pressure yellow, and leaves healthy rows plain', async () => {
    const s = await tmux.capture('large', true);
    // eslint-disable-next-line no-control-regex
    const row = (name: string): string => s.find((l) => l.replace(/\x1b\[[0-9;]*m/g, '').startsWith(name))!;
    expect(row('browser')).toMatch(/\x1b\[31mbrowser/);
    expect(row('work')).toMatch(/\x1b\[33m +22\.5\/4\.3/);
    expect(row('anon')).not.toMatch(/\x1b\[3[13]m/);
  });

  it('re-sorts with p, n and m', async () => {
    await tmux.keys('small', 'p');
    let s = await tmux.waitFor('small', 'sort by pressure', has('sort: pressure'));
    expect(names(s)).toEqual(['work', 'browser', 'dom0', 'anon']);
    await tmux.keys('small', 'n');
    s = await tmux.waitFor('small', 'sort by name', has('sort: name'));
    expect(names(s)).toEqual(['anon', 'browser', 'dom0', 'work']);
    await tmux.keys('small', 'm');
    s = await tmux.waitFor('small', 'sort by memory', has('sort: memory'));
    expect(names(s)).toEqual(['dom0', 'browser', 'work', 'anon']);
  });

  it('opens the detail pane on the selected VM with its target history', async () => {
    // The first row (dom0) starts selected; Down moves to browser.
    await tmux.keys('small', 'Down', 'Enter');
    const s = await tmux.waitFor('small', 'detail pane', has('-- browser (domid 5) '));
    const pane = s.slice(s.findIndex((l) => l.startsWith('-- browser'))).join('\n');
    expect(pane).toContain('actual 2.9G  target 1.5G  ideal 1.4G  floor 400M  maxmem 4.0G');
    expect(pane).toContain('flags: stuck');
    expect(pane).toMatch(/\d\d:\d\d:\d\d +2\.9G -> 1\.5G +shrink: idle, ideal 1400M/);
    await tmux.keys('small', 'Enter');
    await tmux.waitFor('small', 'detail pane closed', (x) => !has('-- browser')(x));
  });

  it('shows help on h and closes it on Esc', async () => {
    await tmux.keys('small', 'h');
    await tmux.waitFor('small', 'help', has('xmem top: help'));
    await tmux.keys('small', 'Escape');
    await tmux.waitFor('small', 'help closed', (x) => !has('xmem top: help')(x) && names(x).length === 4);
  });

  it('follows live updates, and holds the screen while paused', async () => {
    source.push(hostState({ atMs: Date.now(), policy: 'qmemman' }));
    await tmux.waitFor('small', 'the update', (x) => x[0]!.startsWith('policy qmemman'));
    await tmux.keys('small', 'Space');
    await tmux.waitFor('small', 'paused', has('PAUSED'));
    source.push(hostState({ atMs: Date.now(), policy: 'static' }));
    await new Promise((r) => setTimeout(r, 600));
    expect((await tmux.capture('small'))[0]).toMatch(/^policy qmemman/);
    await tmux.keys('small', 'Space');
    await tmux.waitFor('small', 'resumed on the newest state', (x) => x[0]!.startsWith('policy static') && !has('PAUSED')(x));
  });

  it('redraws cleanly on resize', async () => {
    await tmux.tmux('resize-window', '-t', 'small', '-x', '120', '-y', '30');
    const s = await tmux.waitFor('small', 'the 120x30 layout', (x) => x.length === 30 && has('MAXMEM')(x) && /^sort:/.test(x[29]!));
    for (const l of s) expect(l.length).toBeLessThanOrEqual(120);
    expect(names(s)).toEqual(['dom0', 'browser', 'work', 'anon']);
    await tmux.tmux('resize-window', '-t', 'small', '-x', '80', '-y', '24');
    await tmux.waitFor('small', 'back to 80x24', (x) => x.length === 24 && !has('MAXMEM')(x) && /^sort:/.test(x[23]!));
  });

  it('shows a disconnect banner when the service goes away, and reconnects when it is back', async () => {
    await server!.close();
    server = null;
    const down = await tmux.waitFor('small', 'the disconnect banner', has('DISCONNECTED'));
    expect(down[0]).toMatch(/^ DISCONNECTED \(reconnecting in \d+(ms|s)\): /);
    expect(names(down)).toHaveLength(4); // the last data stays on screen
    source = new FakeSource(hostState({ atMs: Date.now(), policy: 'squeezed', vms: [vm({ domid: 11, name: 'work', actualKib: 1234 * 1024 })] }));
    server = await startStateServer(source, { socketPath: sock });
    const back = await tmux.waitFor('small', 'reconnected', (x) => !has('DISCONNECTED')(x) && x[0]!.startsWith('policy squeezed'));
    expect(names(back)).toEqual(['work']);
    expect(back.find((l) => l.startsWith('work'))).toMatch(/^work +11 +1\.2G /);
  });

  it('started before the service, says it is not running, then connects when it starts', async () => {
    const lateSock = path.join(tmp.dir, 'late.sock');
    await tmux.start('early', 80, 24, cmd(lateSock), { TZ: 'UTC' });
    const s = await tmux.waitFor('early', 'not-running banner', has('DISCONNECTED'));
    expect(s.slice(0, 2).join('')).toMatch(/^ DISCONNECTED \(reconnecting in \d+m?s\): the xmem service is not running/);
    expect(s.slice(0, 2).join('').replace(/ /g, '')).toContain(`(nostatesocketat${lateSock})`);
    const late = await startStateServer(new FakeSource(hostState({ atMs: Date.now() })), { socketPath: lateSock });
    try {
      const up = await tmux.waitFor('early', 'connected', (x) => !has('DISCONNECTED')(x) && names(x).length === 4);
      expect(up[0]).toMatch(/^policy xmem/);
    } finally {
      await late.close();
    }
  });

  it('quits on q with exit status 0 and gives the terminal back', async () => {
    await tmux.keys('large', 'q');
    const s = await tmux.waitFor('large', 'top to exit', has('top exited with'));
    expect(s.join('\n')).toContain('top exited with 0');
    expect(await tmux.display('large', '#{alternate_on}')).toBe('0');
  });
});
