import os from 'node:os';
import path from 'node:path';
import type pino from 'pino';
import { POLICIES } from '../../src/policy/config.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import { startStateServer, type StateServer } from '../state/server.js';
import { buildSimRig, type SimRig } from './run.js';
import type { Scenario } from './scenario.js';
import { scaledClock } from './scaled-clock.js';

/**
 * A simulated host running live (real time, optionally sped up), with the state server up so
 * `xmem top` can watch it. Shared by `xmem sim` and `xmem demo`.
 */

export function defaultSimSocket(): string {
  return process.env.XMEM_STATE_SOCKET || path.join(os.tmpdir(), `xmem-sim-${process.getuid?.() ?? 'u'}`, 'state.sock');
}

export function checkPolicy(p: string): string | null {
  return (POLICIES as readonly string[]).includes(p) ? null : `unknown policy '${p}' (one of ${POLICIES.join(', ')})`;
}

export interface LiveSim {
  rig: SimRig;
  server: StateServer;
  socketPath: string;
  /** Resolves when the scenario's duration has passed (simulated time). */
  finished: Promise<void>;
  stop(): Promise<void>;
}

export async function startLiveSim(o: { scenario: Scenario; policy: string; speed: number; socketPath: string; logger: pino.Logger; xenstorePath?: string }): Promise<LiveSim> {
  const clock = scaledClock(o.speed);
  const xenstorePath = o.xenstorePath;
  const rig = await buildSimRig({
    scenario: o.scenario, policy: o.policy, clock, logger: o.logger,
    ...(xenstorePath ? { connect: () => connectXenstore({ path: xenstorePath }) } : {}),
  });
  const server = await startStateServer(rig.source, { socketPath: o.socketPath, logger: o.logger });
  await rig.start();
  let cancel: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    cancel = clock.setTimer(o.scenario.durationS * 1000, resolve);
  });
  return {
    rig, server, socketPath: o.socketPath, finished,
    async stop() {
      cancel();
      await rig.stop();
      await server.close();
    },
  };
}
