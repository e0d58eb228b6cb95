import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConfig, loadConfig, parseConfig } from '../../dom0/config.js';

const MiB = 1024;

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-config-'));
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('config', () => {
  it('has working defaults: xmem policy, 10 s sweep, 5 s stuck, 64 MiB reserve', () => {
    const c = defaultConfig();
    expect(c.policy.policy).toBe('xmem');
    expect(c.service).toMatchObject({ sweepIntervalMs: 10_000, stuckAfterMs: 5000, minPassIntervalMs: 100, lowerMaxmemOnShrink: true });
    expect(c.policy.hostFreeReserve).toBe(64 * MiB);
    expect(c.vms).toEqual({});
  });

  it('reads per-VM overrides by name, sizes with units or as KiB', () => {
    const c = parseConfig({ vms: { work: { min: '1G', max: 8 * 1024 * MiB, weight: 2 }, 'sys-net': { pin: '400M' } } });
    expect(c.vms.work).toEqual({ minKib: 1024 * MiB, maxKib: 8 * 1024 * MiB, weight: 2 });
    expect(c.vms['sys-net']).toEqual({ pinKib: 400 * MiB });
  });

  it.each([
    [{ service: { sweepIntervalMs: 'soon' } }, 'service.sweepIntervalMs'],
    [{ service: { sweepIntervalMS: 1000 } }, 'service.sweepIntervalMS: unknown key'],
    [{ vms: { work: { min: 'lots' } } }, 'vms.work.min: not a size'],
    [{ vms: { work: { min: '2G', max: '1G' } } }, 'vms.work'],
    [{ policy: 'qmemmand' }, 'policy'],
    [{ hysteresis: { total: -1 } }, 'hysteresis.total'],
    [{ qmemmanConf: '/etc/qubes/qmemman.conf' }, 'qmemmanConf'],
  ])('refuses %j naming %s', (raw, where) => {
    expect(() => parseConfig(raw)).toThrow(ConfigError);
    expect(() => parseConfig(raw)).toThrow(where);
  });

  it('loads a qmemman.conf for policy qmemman; keys in the JSON file win', async () => {
    const conf = tmpFile('qmemman.conf', '[global]\nvm-min-mem = 300MiB\ndom0-mem-boost = 500MiB\ncache-margin-factor = 1.5\n');
    const json = tmpFile('config.json', JSON.stringify({ policy: 'qmemman', qmemmanConf: conf, qmemman: { 'cache-margin-factor': 1.2 } }));
    const c = await loadConfig(json);
    expect(c.policy.qmemman).toEqual({ 'vm-min-mem': 300 * 1024 * 1024, 'dom0-mem-boost': 500 * 1024 * 1024, 'cache-margin-factor': 1.2 });
  });

  it('names the file for unreadable files, bad JSON and a broken qmemman.conf', async () => {
    await expect(loadConfig('/nonexistent/xmem.json')).rejects.toThrow(/\/nonexistent\/xmem.json: cannot read \(ENOENT\)/);
    await expect(loadConfig(tmpFile('c.json', '{ "policy": '))).rejects.toThrow(/not valid JSON/);
    const conf = tmpFile('qmemman.conf', '[global]\nvm-min-mem = twelve\n');
    const json = tmpFile('config.json', JSON.stringify({ policy: 'qmemman', qmemmanConf: conf }));
    await expect(loadConfig(json)).rejects.toThrow(/qmemmanConf/);
  });
});
