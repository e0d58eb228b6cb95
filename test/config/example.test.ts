import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, ConfigError } from '../../dom0/config.js';

describe('the shipped example config', () => {
  it('loads, with the state-socket group and metrics port passed through', async () => {
    const cfg = await loadConfig(new URL('../../examples/config.json', import.meta.url).pathname);
    expect(cfg.policy.policy).toBe('xmem');
    expect(cfg.vms['sys-net']?.pinKib).toBe(400 * 1024);
    expect(cfg.vms['work']?.minKib).toBe(1024 * 1024);
  });

  it('accepts stateGroup and metricsPort, and refuses a bad port naming its path', () => {
    const ok = parseConfig({ service: { stateGroup: 'qubes', metricsPort: 9750 } });
    expect(ok.service.stateGroup).toBe('qubes');
    expect(ok.service.metricsPort).toBe(9750);
    expect(() => parseConfig({ service: { metricsPort: 70000 } })).toThrow(ConfigError);
    expect(() => parseConfig({ service: { metricsPort: 70000 } })).toThrow(/service\.metricsPort/);
  });
});
