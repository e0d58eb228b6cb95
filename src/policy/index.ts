import type { PolicyConfig } from './config.js';
import type { HostSnapshot, PolicyResult } from './types.js';
import { decideQmemman } from './qmemman.js';
import { decideSqueezed } from './squeezed.js';
import { decideStatic } from './static.js';
import { decideXmem } from './xmem.js';

export { PolicyConfigSchema, defaultPolicyConfig, type PolicyConfig, type PolicyConfigInput } from './config.js';
export type * from './types.js';

/**
 * The policy: a pure function from what the host looks like now (plus each VM's history,
 * returned by the previous call) to a target per VM, each with a one-sentence reason.
 * No I/O, no clock (time is `snapshot.nowMs`), no randomness; the same input gives the same
 * output. Which algorithm runs is `config.policy`.
 */
export function decide(snapshot: HostSnapshot, config: PolicyConfig): PolicyResult {
  switch (config.policy) {
    case 'xmem':
      return decideXmem(snapshot, config);
    case 'qmemman':
      return decideQmemman(snapshot, config);
    case 'squeezed':
      return decideSqueezed(snapshot, config);
    case 'static':
      return decideStatic(snapshot, config);
  }
}
