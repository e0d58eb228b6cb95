import type { DecisionLog, HostState, Refusal } from '../../src/schemas/state.js';

/**
 * What the state server needs from the manager. The state is pulled (`current()`), never
 * pushed: building it costs ~N objects and its JSON ~N lines, so it is built only while a
 * viewer watches or a scraper asks, not after every pass of a service nobody is looking at.
 *  - 'change': current() moved (after every pass, a reservation booked or answered…);
 *  - 'decision': a target changed (what the Prometheus counter counts: the state only
 *    carries a recent window, which may slide by more than one scrape interval);
 *  - 'refusal': a VM start was refused.
 * `Manager` (an EventEmitter) satisfies it as is; `off` lets the server detach when it closes,
 * so a restarted server does not leak listeners on a long-lived manager.
 */
export interface StateSource {
  current(): HostState;
  on<E extends StateEvent>(event: E, listener: StateListener<E>): unknown;
  off?<E extends StateEvent>(event: E, listener: StateListener<E>): unknown;
}

export interface StateEvents {
  change: [];
  decision: [DecisionLog];
  refusal: [Refusal];
}
export type StateEvent = keyof StateEvents;
export type StateListener<E extends StateEvent> = (...args: StateEvents[E]) => void;
