import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseXlInfo, parseXlList } from '../../dom0/host/xl-parse.js';
import { XlHost } from '../../dom0/host/xl-host.js';
import type { Clock } from '../../src/clock.js';

// Fixtures are hand-written from xl's printf formats (see fixtures/README.md), not captured.
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('parseXlList', () => {
  const rows = parseXlList(fixture('xl-list.txt'));

  it('reads every domain with KiB memory and its state letters', () => {
    expect(rows.map((r) => r.domid)).toEqual([0, 1, 3, 4, 7, 8]);
    expect(rows[0]).toMatchObject({ name: 'Domain-0', memKib: 4096 * 1024, paused: false, dying: false });
    expect(rows[3]).toMatchObject({ name: 'paused-one', paused: true });
    expect(rows[4]).toMatchObject({ domid: 7, dying: true, shutdown: true });
    expect(rows[5]).toMatchObject({ name: 'shutting', shutdown: true, dying: false });
  });

  it('keeps names with spaces (fields are parsed from the right)', () => {
    expect(rows[2]).toMatchObject({ name: 'work vm', memKib: 1532 * 1024, vcpus: 2 });
  });

  it('rejects a missing header, a garbled row and an impossible state', () => {
    expect(() => parseXlList('')).toThrow(/header/);
    const header = fixture('xl-list.txt').split('\n')[0]!;
    expect(() => parseXlList(`${header}\nDomain-0 zero 4096 2 r----- 1.0\n`)).toThrow(/unparsable/);
    expect(() => parseXlList(`${header}\nDomain-0 0 4096 2 rxxxxx 1.0\n`)).toThrow(/state/);
  });
});

describe('parseXlInfo', () => {
  it('reads total and free memory in KiB', () => {
    expect(parseXlInfo(fixture('xl-info.txt'))).toEqual({ totalKib: 3071 * 1024, freeKib: 2014 * 1024 });
  });
  it('names the missing or bad field', () => {
    expect(() => parseXlInfo('total_memory : 100\n')).toThrow(/free_memory/);
    expect(() => parseXlInfo('total_memory : 1x\nfree_memory : 3\n')).toThrow(/total_memory/);
  });
});

describe('XlHost', () => {
  const header = fixture('xl-list.txt').split('\n')[0]!;
  const list = (mem0: number, mem1: number) =>
    `${header}\nDomain-0 0 ${mem0} 2 r----- 1.0\nvm1 1 ${mem1} 1 -b---- 1.0\n`;
  const info = 'total_memory : 8192\nfree_memory : 2048\n';

  function setup() {
    let now = 0;
    const clock: Clock = { now: () => now, sleep: async () => {}, setTimer: () => () => {} };
    const calls: string[][] = [];
    let listText = list(4096, 1024);
    const host = new XlHost({
      clock,
      infoEveryMs: 60_000,
      run: async (args) => {
        calls.push(args);
        return args[0] === 'info' ? info : args[0] === 'list' ? listText : '';
      },
    });
    return { host, calls, advance: (ms: number) => (now += ms), setList: (t: string) => (listText = t) };
  }

  it('calls xl info once, then derives free memory from the domain list (one fork per pass)', async () => {
    const { host, calls, advance, setList } = setup();
    const f1 = await host.facts();
    expect(f1.freeKib).toBe(2048 * 1024);
    expect(calls).toEqual([['info'], ['list']]);
    // vm1 shrinks by 512 MiB: free memory follows without another `xl info`.
    setList(list(4096, 512));
    advance(1000);
    const f2 = await host.facts();
    expect(calls.slice(2)).toEqual([['list']]);
    expect(f2.freeKib).toBe((2048 + 512) * 1024);
    advance(60_000);
    await host.facts();
    expect(calls.slice(3)).toEqual([['info'], ['list']]);
  });

  it('reports a low maxmem guess until it set one, and passes xl the value minus 1 MiB', async () => {
    const { host, calls } = setup();
    expect((await host.facts()).domains[1]!.maxmemKib).toBe(1024 * 1024 + 1024);
    await host.setMaxmem(1, 2048 * 1024 + 1024);
    expect(calls.at(-1)).toEqual(['mem-max', '1', `${2048 * 1024}k`]);
    expect((await host.facts()).domains[1]!.maxmemKib).toBe(2048 * 1024 + 1024);
  });
});
