import { EventEmitter } from 'node:events';
import pino from 'pino';
import { realClock, type Clock } from '../../src/clock.js';
import type { VmDecision } from '../../src/policy/types.js';
import type { HostState, Refusal } from '../../src/schemas/state.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import { connectEmbedded, EmbeddedStore } from '../../src/xenstore/embedded/index.js';
import { parseConfig, type XmemConfig } from '../config.js';
import { Admission } from '../admission/admission.js';
import { ReservationBook } from '../admission/book.js';
import { withAdmissionPins } from '../admission/pins.js';
import { Manager, type ManagerDeps } from '../manager/manager.js';
import type { StateSource } from '../state/source.js';
import type { SimResults } from './metrics.js';
import type { Scenario } from './scenario.js';
import { Simulation } from './simulation.js';
import { VirtualClock } from './virtual-clock.js';

/**
 * Wires one simulated run: an embedded xenstore (or a given one), the simulated host with its
 * guests, and the REAL Manager with the real policy on top. Virtual clock: runs the whole
 * scenario as fast as the CPU allows and returns the results. Real clock: `start` it and stop
 * it when done (the demo).
 */

export interface SimRigOptions {
  scenario: Scenario;
  policy: string;
  clock?: Clock;
  logger?: pino.Logger;
  /** Extra config keys (merged over the scenario's `config`). */
  config?: Record<string, unknown>;
  /** A real xenstored connection factory instead of the embedded store (guests then write as dom0). */
  connect?: () => Promise<XenstoreClient>;
  /** Replaces the policy (tests: a deliberately broken one must trip the invariants). */
  decide?: ManagerDeps['decide'];
}

export interface SimRig {
  sim: Simulation;
  manager: Manager;
  clock: Clock;
  config: XmemConfig;
  /** StateSource for the state server: the manager's state plus the simulator's refusals. */
  source: StateSource;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function buildSimRig(o: SimRigOptions): Promise<SimRig> {
  const clock = o.clock ?? new VirtualClock();
  const logger = o.logger ?? pino({ level: 'silent' });
  const config = parseConfig({ ...o.scenario.config, ...o.config, policy: o.policy }, `scenario ${o.scenario.name}`);

  let toolsXs: XenstoreClient;
  let managerXs: XenstoreClient;
  let guestXs: (domid: number) => XenstoreClient;
  if (o.connect) {
    toolsXs = await o.connect();
    managerXs = await o.connect();
    guestXs = () => toolsXs;
  } else {
    const store = new EmbeddedStore();
    toolsXs = connectEmbedded(store, 0);
    managerXs = connectEmbedded(store, 0);
    const guests = new Map<number, XenstoreClient>();
    guestXs = (domid) => {
      if (domid === 0) return toolsXs;
      let c = guests.get(domid);
      if (!c) {
        const conn = connectEmbedded(store, domid);
        conn.on('close', () => guests.delete(domid));
        guests.set(domid, conn);
        c = conn;
      }
      return c;
    };
  }

  // VM starts go through the real admission (dom0/admission), wired as `xmem run` wires it:
  // the book exists before the Manager, which reads its reservations every pass.
  const book = new ReservationBook({ clock, timeoutMs: 120_000 });
  let admission: Admission | null = null;
  const sim: Simulation = new Simulation({
    scenario: o.scenario,
    clock,
    xs: toolsXs,
    guestXs,
    admission: {
      async reserve(forName, kib) {
        const d = await admission!.reserve({ forName, kib });
        return d.ok ? { ok: true, id: d.id } : { ok: false, why: d.message };
      },
      release: (id) => void admission!.release(id, 'domain started'),
      reservations: () => book.reservations(),
    },
    decisions: (): VmDecision[] => manager.lastDecisions(),
  });
  await sim.setup();
  const manager: Manager = new Manager({
    xs: managerXs, host: sim.host, clock, config, logger, reservations: book.reservations,
    decide: withAdmissionPins(book, o.decide),
  });
  book.attach(() => manager.lastSnapshot());
  admission = new Admission(manager, book, {
    clock,
    reserveKib: config.policy.hostFreeReserve,
    squeezeMaxMs: o.scenario.startTimeoutS * 1000,
    logger,
  });
  const m = manager;
  m.on('pass', (r: { atMs: number }) => sim.passSeen(r.atMs));

  const refusals: Refusal[] = [];
  const refused = new EventEmitter();
  sim.on('refused', (r: { name: string; why: string }) => {
    const entry: Refusal = { atMs: Date.now(), forName: r.name, neededKib: 0, reason: r.why };
    refusals.push(entry);
    if (refusals.length > 20) refusals.shift();
    refused.emit('refusal', entry);
    refused.emit('change');
  });
  const withRefusals = (s: HostState): HostState => ({ ...s, refusals: [...s.refusals, ...refusals] });
  const source: StateSource = {
    current: () => withRefusals(m.state()),
    on(event, listener) {
      if (event !== 'refusal') m.on(event, listener);
      if (event !== 'decision') refused.on(event, listener);
    },
    off(event, listener) {
      m.off(event, listener);
      refused.off(event, listener);
    },
  };

  return {
    sim, manager: m, clock, config, source,
    async start() {
      await m.start();
      sim.start();
    },
    async stop() {
      await sim.stop();
      await m.stop();
      await managerXs.close();
      await toolsXs.close();
    },
  };
}

/** Runs a scenario to its end on the virtual clock and returns what happened. */
export async function runScenario(scenario: Scenario, policy: string, extra: Omit<SimRigOptions, 'scenario' | 'policy' | 'clock'> = {}): Promise<SimResults> {
  const clock = new VirtualClock();
  const rig = await buildSimRig({ ...extra, scenario, policy, clock });
  await rig.start();
  await clock.runUntil(scenario.durationS * 1000);
  const results = rig.sim.results();
  // A pass may be waiting on the virtual clock (free-before-allocate); keep time moving
  // until the manager has stopped.
  let stopped = false;
  const stopping = rig.stop().finally(() => { stopped = true; });
  for (let i = 0; i < 10_000 && !stopped; i++) await clock.advance(100);
  await stopping;
  return results;
}

export { realClock };
