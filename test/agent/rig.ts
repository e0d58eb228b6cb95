import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Agent, type AgentConfig, type AgentXenstore } from '../../domU-agent/src/agent.js';
import type { HelperSpec, HelperTiming } from '../../domU-agent/src/helper.js';
import { DEFAULT_SCHEDULE } from '../../domU-agent/src/schedule.js';
import { ProcSources, type Sources } from '../../domU-agent/src/sources.js';
import type { Clock } from '../../src/clock.js';
import { connectXenstore, type XenstoreConnection } from '../../src/xenstore/client.js';
import { startXenstored, type PeerDaemon } from '../peer/daemon.js';
import { createGuestNodes } from '../peer/guest.js';
import { ringTransport } from '../peer/ring-transport.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURES = path.resolve(here, '../fixtures');
export const procFixture = (name: string) => path.join(FIXTURES, 'proc', name);
export const XEN_SYS = path.join(FIXTURES, 'sys/xen-guest');

export const TEST_CONFIG: AgentConfig = {
  ...DEFAULT_SCHEDULE,
  qubes: true,
  backoffMinMs: 200,
  backoffMaxMs: 30_000,
  writeTimeoutMs: 5000,
};

/** A private, writable copy of a fixture proc tree whose files the test rewrites in place. */
export class ScriptedProc {
  readonly root: string;
  constructor(fixture: string) {
    this.root = mkdtempSync(path.join(os.tmpdir(), 'xmem-proc-'));
    cpSync(procFixture(fixture), this.root, { recursive: true });
  }
  read(file: string): string {
    return readFileSync(path.join(this.root, file), 'latin1');
  }
  /** Rewrites one meminfo field (KiB). */
  setMeminfo(key: string, kib: number): void {
    const text = this.read('meminfo').replace(new RegExp(`^${key.replace(/[()]/g, '\\$&')}:.*$`, 'm'), `${key}: ${kib} kB`);
    writeFileSync(path.join(this.root, 'meminfo'), text);
  }
  meminfo(key: string): number {
    return Number(new RegExp(`^${key.replace(/[()]/g, '\\$&')}:\\s+(\\d+)`, 'm').exec(this.read('meminfo'))![1]);
  }
  setPsi(some: { avg10?: number; avg60?: number; avg300?: number; total: number }): void {
    const f = (n = 0) => n.toFixed(2);
    const text = `some avg10=${f(some.avg10)} avg60=${f(some.avg60)} avg300=${f(some.avg300)} total=${some.total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`;
    writeFileSync(path.join(this.root, 'pressure/memory'), text);
  }
  dispose(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** dom0 side: sets up domain `domid` as libxl would and introduces it to the real daemon. */
export async function introduceGuest(d: PeerDaemon, dom0: XenstoreConnection, domid: number): Promise<void> {
  await createGuestNodes(dom0, domid);
  await dom0.introduce(domid, 1, 7);
}

/** Connects as the unprivileged guest `domid` over its ring (the domain must be introduced). */
export function guestConnect(d: PeerDaemon, domid: number): () => Promise<AgentXenstore> {
  return () => connectXenstore({ transport: ringTransport(d.ringDir, domid), reconnect: false });
}

export interface AgentRig {
  agent: Agent;
  logs: string[];
  stop(): Promise<void>;
}

export function makeAgent(opts: {
  clock: Clock;
  connect: () => Promise<AgentXenstore>;
  procRoot: string;
  sysRoot?: string;
  config?: Partial<AgentConfig>;
  helper?: HelperSpec | null;
  helperTiming?: HelperTiming;
  /** Wraps the real sources (tests count reads). */
  wrapSources?: (s: Sources) => Sources;
}): AgentRig {
  const logs: string[] = [];
  const proc = new ProcSources(opts.procRoot, opts.sysRoot ?? path.join(FIXTURES, 'sys/none'));
  const sources = opts.wrapSources ? opts.wrapSources(proc) : proc;
  const agent = new Agent({
    clock: opts.clock,
    sources,
    connect: opts.connect,
    log: (l) => logs.push(l),
    config: { ...TEST_CONFIG, ...opts.config },
    ...(opts.helper !== undefined ? { helper: opts.helper } : {}),
    ...(opts.helperTiming ? { helperTiming: opts.helperTiming } : {}),
  });
  return { agent, logs, stop: () => agent.stop() };
}

/** Counts the reads the loop makes, per source. */
export function countingSources(inner: Sources): Sources & { counts: { psi: number; mem: number; full: number } } {
  const counts = { psi: 0, mem: 0, full: 0 };
  return {
    counts,
    readPsi: () => (counts.psi++, inner.readPsi()),
    readMem: () => (counts.mem++, inner.readMem()),
    readFull: (mem) => (counts.full++, inner.readFull(mem)),
    close: () => inner.close(),
  };
}

/** One describe block's real C xenstored and dom0 connection, and cleanups run after each test (last first). */
export interface PeerFixture {
  daemon: PeerDaemon;
  dom0: XenstoreConnection;
  readonly cleanups: (() => Promise<void> | void)[];
}

/** Registers the hooks that start and stop the fixture; call at the top of a describe block. */
export function usePeerFixture(): PeerFixture {
  const f = { cleanups: [] } as unknown as PeerFixture;
  beforeAll(async () => {
    f.daemon = await startXenstored({ impl: 'c' });
    f.dom0 = await connectXenstore({ path: f.daemon.socketPath });
  });
  afterEach(async () => {
    for (const c of f.cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await f.dom0?.close();
    await f.daemon?.stop();
  });
  return f;
}
