import { describe, expect, it } from 'vitest';
import { PolicyConfigSchema } from '../../src/policy/config.js';
import { DEFAULT_SCHEDULE } from '../../domU-agent/src/schedule.js';

// The lab saw idle guests flap ok -> stale -> ok when the manager's stale limit was shorter
// than the agent's heartbeat: a quiet agent must never look dead with the shipped defaults.
describe('agent heartbeat and manager staleness defaults', () => {
  it('a report goes stale only after at least two missed heartbeats', () => {
    const policy = PolicyConfigSchema.parse({});
    expect(policy.staleReportMs).toBeGreaterThanOrEqual(2 * DEFAULT_SCHEDULE.heartbeatMs);
  });
});
