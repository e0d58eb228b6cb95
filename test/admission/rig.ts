import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { realClock } from '../../src/clock.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import { parseConfig, type XmemConfig } from '../../dom0/config.js';
import { ScriptedHost, followTargetWrites, type ScriptedDomain } from '../../dom0/host/scripted-host.js';
import { Manager } from '../../dom0/manager/manager.js';
import { keys } from '../../dom0/manager/keys.js';
import { ReservationBook } from '../../dom0/admission/book.js';
import { startAdmissionServer, type AdmissionServer } from '../../dom0/admission/server.js';
import { withAdmissionPins } from '../../dom0/admission/pins.js';
import { createDomainNodes } from '../manager/rig.js';

/**
 * The real Manager and real policy on the REAL C xenstored, a scripted host standing in for
 * Xen and the balloons, and the admission server in front: what `xmem run` wires, in a test.
 * Guests publish Qubes meminfo ("used" KiB), so each VM's floor is used + the policy's headroom.
 */

export interface AdmitDomain extends ScriptedDomain {
  staticMaxKib?: number;
  /** Qubes meminfo "used" KiB the guest publishes (none for dom0 if null). */
  usedKib: number | null;
}

export interface AdmitRig {
  dir: string;
  admissionSocket: string;
  qmemmanSocket: string;
  manager: Manager;
  host: ScriptedHost;
  book: ReservationBook;
  server: AdmissionServer;
  tools: XenstoreClient;
  config: XmemConfig;
  logs: Record<string, unknown>[];
  floor(domid: number): number;
  waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs?: number): Promise<NonNullable<T>>;
  close(): Promise<void>;
}

export async function makeAdmitRig(o: {
  xenstoredSocket: string;
  totalKib: number;
  domains: AdmitDomain[];
  holdTimeoutMs?: number;
  service?: Record<string, unknown>;
}): Promise<AdmitRig> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-admit-peer-'));
  const tools = await connectXenstore({ path: o.xenstoredSocket });
  for (const d of o.domains) {
    await createDomainNodes(tools, d);
    if (d.usedKib !== null) await tools.write(keys(d.domid).qubes, String(d.usedKib));
  }
  const host = new ScriptedHost({ totalKib: o.totalKib, domains: o.domains });
  const managerXs = followTargetWrites(await connectXenstore({ path: o.xenstoredSocket }), (domid, kib) => host.observeTarget(domid, kib));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const config = parseConfig({
    // These tests squeeze a host whose memory is all handed out (the pre-"free" default).
    surplus: 'proportional',
    service: { sweepIntervalMs: 60_000, minPassIntervalMs: 0, growWaitMaxMs: 300, growWaitPollMs: 20, convergePollMs: 50, ...(o.service ?? {}) },
  });
  const book = new ReservationBook({ clock: realClock, timeoutMs: o.holdTimeoutMs ?? 30_000 });
  const manager = new Manager({
    xs: managerXs, host, clock: realClock, config, logger, reservations: book.reservations, decide: withAdmissionPins(book),
  });
  await manager.start();
  const admissionSocket = path.join(dir, 'admission.sock');
  const qmemmanSocket = path.join(dir, 'qmemman.sock');
  const server = await startAdmissionServer(manager, {
    book,
    clock: realClock,
    reserveKib: config.policy.hostFreeReserve,
    socketPath: admissionSocket,
    qmemmanSocketPath: qmemmanSocket,
    holdTimeoutMs: o.holdTimeoutMs ?? 30_000,
    pollMs: 50,
    logger: logger.child({ part: 'admission' }),
  });
  const rig: AdmitRig = {
    dir, admissionSocket, qmemmanSocket, manager, host, book, server, tools, config, logs,
    floor(domid) {
      const d = manager.lastDecisions().find((x) => x.domid === domid);
      if (!d) throw new Error(`no decision for domain ${domid}`);
      return d.floorKib;
    },
    async waitFor(fn, what, timeoutMs = 8000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = await fn();
        if (v !== null && v !== undefined && v !== false) return v as NonNullable<typeof v>;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await server.close();
      await manager.stop();
      await managerXs.close().catch(() => {});
      await tools.rm('/local').catch(() => {});
      await tools.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}
