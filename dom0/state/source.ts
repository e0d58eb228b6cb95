import type { HostState } from '../../src/schemas/state.js';

/**
 * What the state server needs from the manager: the current state, and a 'state' event after
 * every pass. `Manager` (an EventEmitter) satisfies it as is; `off` lets the server detach
 * when it closes, so a restarted server does not leak listeners on a long-lived manager.
 */
export interface StateSource {
  current(): HostState;
  on(event: 'state', listener: (state: HostState) => void): unknown;
  off?(event: 'state', listener: (state: HostState) => void): unknown;
}
