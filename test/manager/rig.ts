import { Writable } from 'node:stream';
import pino from 'pino';
import { realClock } from '../../src/clock.js';
import type { HostSnapshot, PolicyResult } from '../../src/policy/types.js';
import { encodeGuestReport, type GuestReport } from '../../src/schemas/report.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import type { XenstoreClient, WatchEvent } from '../../src/xenstore/types.js';
import { parseConfig, type XmemConfig } from '../../dom0/config.js';
import { ScriptedHost, followTargetWrites, type ScriptedDomain } from '../../dom0/host/scripted-host.js';
import { Manager, type PassReport } from '../../dom0/manager/manager.js';
import { keys } from '../../dom0/manager/keys.js';

/**
 * A manager on the REAL C xenstored (the caller's daemon) with a scripted host standing in for
 * Xen's hypercalls and the guests' balloons. `tools` is a second, independent connection that
 * plays the toolstack and the guests (writes reports) and observes what the manager wrote.
 */

export const MiB = 1024;
export const GiB = 1024 * 1024;

export interface Rig {
  manager: Manager;
  host: ScriptedHost;
  tools: XenstoreClient;
  managerXs: XenstoreClient;
  config: XmemConfig;
  logs: Record<string, unknown>[];
  passes: PassReport[];
  /** The order of host calls and the manager's xenstore target writes, interleaved. */
  order: string[];
  writeReport(domid: number, r: GuestReport): Promise<void>;
  target(domid: number): Promise<number | null>;
  waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs?: number): Promise<NonNullable<T>>;
  close(): Promise<void>;
}

export interface RigOptions {
  socketPath: string;
  totalKib: number;
  domains: (ScriptedDomain & { staticMaxKib?: number })[];
  service?: Record<string, unknown>;
  policy?: Record<string, unknown>;
  vms?: Record<string, unknown>;
  decide?: (s: HostSnapshot, c: XmemConfig['policy']) => PolicyResult;
  /** Use this connection for the manager instead of opening one (e.g. to count calls). */
  managerXs?: XenstoreClient;
  reconnect?: () => Promise<XenstoreClient>;
  start?: boolean;
}

/** Creates /local/domain/<id> as the toolstack would (name, static-max, target = actual). */
export async function createDomainNodes(xs: XenstoreClient, d: ScriptedDomain & { staticMaxKib?: number }): Promise<void> {
  const k = keys(d.domid);
  await xs.write(`${k.home}/name`, d.name);
  await xs.write(`${k.home}/domid`, String(d.domid));
  await xs.write(k.staticMax, String(d.staticMaxKib ?? d.maxmemKib));
  await xs.write(k.target, String(d.actualKib));
  await xs.mkdir(`${k.home}/data`);
  if (d.domid !== 0) {
    await xs.setPerms(k.home, [{ domid: d.domid, access: 'n' }, { domid: 0, access: 'r' }]);
    await xs.setPerms(`${k.home}/memory`, [{ domid: 0, access: 'n' }, { domid: d.domid, access: 'r' }]);
    await xs.setPerms(`${k.home}/data`, [{ domid: d.domid, access: 'n' }]);
  }
}

export async function makeRig(o: RigOptions): Promise<Rig> {
  const tools = await connectXenstore({ path: o.socketPath });
  for (const d of o.domains) await createDomainNodes(tools, d);
  const host = new ScriptedHost({ totalKib: o.totalKib, domains: o.domains });
  const order: string[] = [];
  const origPush = host.calls.push.bind(host.calls);
  host.calls.push = (...items) => {
    for (const c of items) order.push(c.op === 'facts' ? 'facts' : c.op === 'setMaxmem' ? `maxmem:${c.domid}:${c.kib}` : `target:${c.domid}:${c.kib}`);
    return origPush(...items);
  };
  const raw = o.managerXs ?? (await connectXenstore({ path: o.socketPath }));
  const managerXs = followTargetWrites(raw, (domid, kib) => host.observeTarget(domid, kib));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const config = parseConfig({
    ...(o.policy ?? {}),
    service: { sweepIntervalMs: 60_000, minPassIntervalMs: 0, growWaitMaxMs: 500, growWaitPollMs: 20, ...(o.service ?? {}) },
    vms: o.vms ?? {},
  });
  const manager = new Manager({
    xs: managerXs,
    host,
    clock: realClock,
    config,
    logger: pino({ level: 'debug' }, sink),
    ...(o.decide ? { decide: o.decide } : {}),
    ...(o.reconnect ? { reconnect: o.reconnect } : {}),
  });
  const passes: PassReport[] = [];
  manager.on('pass', (p: PassReport) => passes.push(p));
  if (o.start !== false) await manager.start();

  const rig: Rig = {
    manager, host, tools, managerXs, config, logs, passes, order,
    writeReport: (domid, r) => tools.write(keys(domid).report, encodeGuestReport(r)),
    target: async (domid) => {
      const v = await tools.tryRead(keys(domid).target);
      return v === null ? null : Number(v);
    },
    async waitFor(fn, what, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = await fn();
        if (v !== null && v !== undefined && v !== false) return v as NonNullable<typeof v>;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      await manager.stop();
      await managerXs.close().catch(() => {});
      await tools.close().catch(() => {});
    },
  };
  return rig;
}

/** Resolves with the next value written to `path` (watched on `xs`), skipping the initial event. */
export async function nextWrite(xs: XenstoreClient, path: string, timeoutMs = 5000): Promise<string> {
  let initial = true;
  let unwatch: (() => Promise<void>) | null = null;
  const value = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no write to ${path} within ${timeoutMs} ms`)), timeoutMs);
    void xs.watch(path, (ev: WatchEvent) => {
      if (initial) {
        initial = false;
        return;
      }
      if (ev.path !== path) return;
      clearTimeout(t);
      void xs.read(path).then(resolve, reject);
    }).then((u) => (unwatch = u));
  });
  await (unwatch as (() => Promise<void>) | null)?.();
  return value;
}
