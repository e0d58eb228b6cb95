import { describe, expect, it } from 'vitest';
import { PolicyConfigSchema, defaultPolicyConfig } from '../../src/policy/config.js';
import { parseQmemmanConf } from '../../src/policy/qmemman-conf.js';
import { parseQubesSize } from '../../src/policy/qubes-size.js';
import { M } from './helpers.js';

describe('policy config', () => {
  it('has a default for everything, sizes in KiB', () => {
    const c = defaultPolicyConfig();
    expect(c.policy).toBe('xmem');
    expect(c.surplus).toBe('free');
    expect(c.surplusKeepFree).toBe(0);
    expect(c.floorUsesActiveFile).toBe(true);
    expect(c.hostFreeReserve).toBe(64 * M);
    expect(c.vmMin).toBe(200 * M);
    expect(c.dom0).toEqual({ floor: 1024 * M, boost: 350 * M, weight: 1 });
    expect(c.hysteresis).toEqual({ total: 150 * M, urgent: 15 * M });
    expect(c.qmemman).toEqual({ 'vm-min-mem': 200 * 1024 * 1024, 'dom0-mem-boost': 350 * 1024 * 1024, 'cache-margin-factor': 1.3 });
    expect(c.noSignalTarget).toBe('hold');
  });

  it('sizes: numbers are KiB, strings take a unit, a bare string is bytes', () => {
    const c = PolicyConfigSchema.parse({ vmMin: 300_000, floorHeadroom: '128M', cacheMax: '2G', gapMax: '1048576', noSignalTarget: '1G' });
    expect(c.vmMin).toBe(300_000);
    expect(c.floorHeadroom).toBe(128 * M);
    expect(c.cacheMax).toBe(2 * 1024 * M);
    expect(c.gapMax).toBe(1024);
    expect(c.noSignalTarget).toBe(1024 * M);
  });

  it('nested sections keep their defaults when partly given', () => {
    const c = PolicyConfigSchema.parse({ pressure: { growMin: '32M' }, shrink: { intervalMs: 5000 } });
    expect(c.pressure.growMin).toBe(32 * M);
    expect(c.pressure.stallUs).toBe(10_000);
    expect(c.shrink).toEqual({ intervalMs: 5000, stepFraction: 0.1, stepMin: 64 * M, riseHoldMs: 5000, riseMin: 4 * M });
  });

  it.each([
    [{ policy: 'balloon' }, 'policy'],
    [{ surplus: 'everyone' }, 'surplus'],
    [{ vmMin: '12 parsecs' }, 'vmMin'],
    [{ vmMin: -1 }, 'vmMin'],
    [{ hostFreeReserve: '32M' }, 'hostFreeReserve'],
    [{ pressure: { stallMs: 10 } }, 'pressure'],
    [{ typo: 1 }, ''],
    [{ qmemman: { 'vm-min-mem': '200 parsecs' } }, 'qmemman.vm-min-mem'],
    [{ dom0: { weight: 0 } }, 'dom0.weight'],
  ])('refuses %j, naming the path', (input, path) => {
    const r = PolicyConfigSchema.safeParse(input);
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths.some((p) => p.startsWith(path))).toBe(true);
  });
});

describe('qmemman.conf', () => {
  it('Qubes parse_size: K/M/G are decimal, Ki/Mi/Gi binary, digits are bytes', () => {
    expect(parseQubesSize('200M')).toBe(200_000_000);
    expect(parseQubesSize('200MiB')).toBe(200 * 1024 * 1024);
    expect(parseQubesSize(' 350 Mi ')).toBe(350 * 1024 * 1024);
    expect(parseQubesSize('1G')).toBe(1e9);
    expect(parseQubesSize('4096')).toBe(4096);
    expect(parseQubesSize('1.5G')).toBeNull();
    expect(parseQubesSize('12 parsecs')).toBeNull();
    expect(parseQubesSize('')).toBeNull();
  });

  it('reads the shipped file into policy keys that PolicyConfigSchema accepts', () => {
    const shipped = ['[global]', 'vm-min-mem = 200M', 'dom0-mem-boost = 350M', 'cache-margin-factor = 1.3', 'log-level = 30', ''].join('\n');
    const keys = parseQmemmanConf(shipped);
    expect(keys).toEqual({ qmemman: { 'vm-min-mem': 200_000_000, 'dom0-mem-boost': 350_000_000, 'cache-margin-factor': 1.3 } });
    const c = PolicyConfigSchema.parse({ policy: 'qmemman', ...keys });
    expect(c.qmemman['vm-min-mem']).toBe(200_000_000);
  });

  it('accepts comments, `:` separators, other sections and case-insensitive keys; missing keys keep defaults', () => {
    const text = '# comment\n; another\n[other]\nvm-min-mem = 1\n[global]\nVM-Min-Mem: 300MiB\n';
    expect(parseQmemmanConf(text)).toEqual({ qmemman: { 'vm-min-mem': 300 * 1024 * 1024 } });
    expect(parseQmemmanConf('')).toEqual({ qmemman: {} });
  });

  it.each([
    ['vm-min-mem = 200M', /line 1: key before any \[section\]/],
    ['[global]\nvm-min-mem = lots', /line 2: vm-min-mem: not a size/],
    ['[global]\ncache-margin-factor = -1', /line 2: cache-margin-factor/],
    ['[global]\ncache-margin-factor = 1.3x', /line 2: cache-margin-factor/],
    ['[global]\nthis is not ini', /line 2: expected "key = value"/],
    ['[global]\nvm-min-mem = 1M\nvm-min-mem = 2M', /line 3: vm-min-mem appears twice/],
    ['[global]\n[global]', /line 2: section \[global\] appears twice/],
    ['[global]\nvm-min-mem = 1M\n  continued', /line 3: indented continuation/],
  ])('refuses %j with the line number', (text, err) => {
    expect(() => parseQmemmanConf(text)).toThrow(err);
  });
});
