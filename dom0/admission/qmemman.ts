import type net from 'node:net';
import type { Clock } from '../../src/clock.js';
import type { Admission, AdmissionLogger, ManagerPort } from './admission.js';
import { RateWindow, type RateRule } from './rate.js';

/**
 * qmemman.sock, byte for byte (anchors §1.10), so qubesd starts VMs through xmem unchanged:
 *   "<bytes>\n"                    → free that much for a VM start: "OK\n" or "FAIL\n"
 *   "<domid>:<bytes> <domid>:<bytes> …\n" → set those domains' memory (0 = its floor, qmemman's
 *                                    prefmem): "OK\n" or "FAIL\n"
 *   anything else                  → "INVALID_ARG\n"
 * The request is read as qmemman reads it (one recv of at most 1024 bytes, stripped). The lock
 * (admission's FIFO) is taken for the request and held until the client closes: qubesd keeps the
 * connection open while it creates the domain, and the memory stays reserved until then.
 * Unlike qmemman, a client that never closes cannot hold the lock forever: after `holdMaxMs`
 * the connection is closed and everything it held released.
 */

export type QmemmanRequest =
  | { kind: 'balloon'; bytes: number }
  | { kind: 'set-mem'; targets: { domid: number; bytes: number }[] }
  | { kind: 'invalid' };

/** qmemman's own parse of `recv(1024).strip()` (pure). */
export function parseQmemmanRequest(raw: string): QmemmanRequest {
  const data = raw.replace(/^[\s\0]+|[\s\0]+$/g, '');
  if (/^\d+$/.test(data)) {
    const bytes = Number(data);
    return Number.isSafeInteger(bytes) ? { kind: 'balloon', bytes } : { kind: 'invalid' };
  }
  const args = data.split(/\s+/);
  if (!args[0]?.includes(':')) return { kind: 'invalid' };
  const targets: { domid: number; bytes: number }[] = [];
  for (const a of args) {
    const m = /^(\d{1,5}):(\d{1,16})$/.exec(a);
    if (!m) return { kind: 'invalid' };
    targets.push({ domid: Number(m[1]), bytes: Number(m[2]) });
  }
  return { kind: 'set-mem', targets };
}

export interface QmemmanOptions {
  clock: Clock;
  logger?: AdmissionLogger;
  /** Longest a connection may hold the lock (and its reservation). */
  holdMaxMs: number;
  /** How long to wait for the rest of a request without a newline (qmemman does one recv). */
  quietMs?: number;
  rule: RateRule;
  pollMs: number;
}

let connSeq = 0;

export function serveQmemman(sock: net.Socket, admission: Admission, manager: ManagerPort, opts: QmemmanOptions): void {
  const conn = ++connSeq;
  const owner = `qmemman-${conn}`;
  let buf = Buffer.alloc(0);
  let started = false;
  let closed = false;
  let unlock: (() => void) | null = null;
  let reservation: string | null = null;
  let quiet: (() => void) | null = null;
  let holdTimer: (() => void) | null = null;

  const finish = () => {
    if (closed) return;
    closed = true;
    quiet?.();
    holdTimer?.();
    if (reservation) admission.release(reservation, 'qmemman.sock client disconnected');
    reservation = null;
    admission.book.unpin(owner);
    if (unlock) opts.logger?.info({ conn }, 'qmemman.sock: client disconnected, resuming admissions');
    unlock?.();
    unlock = null;
  };

  sock.on('error', () => {});
  sock.on('close', finish);
  sock.on('end', () => {
    if (!started && buf.length > 0) run();
    sock.end();
  });
  sock.on('data', (chunk: Buffer) => {
    if (started) {
      // qmemmand: "Second request over qmemman.sock?" and the handler returns (connection ends).
      opts.logger?.warn({ conn }, 'qmemman.sock: second request on one connection; closing it');
      sock.destroy();
      return;
    }
    buf = Buffer.concat([buf, chunk]);
    if (buf.includes(0x0a) || buf.length >= 1024) return run();
    quiet?.();
    quiet = opts.clock.setTimer(opts.quietMs ?? 200, run);
  });

  function reply(text: 'OK' | 'FAIL' | 'INVALID_ARG'): void {
    if (!closed && sock.writable) sock.write(text + '\n');
  }

  // A bug must cost this client a FAIL, never the service (an unhandled rejection would end it).
  function run(): void {
    start().catch((err: unknown) => {
      opts.logger?.warn({ conn, err: err instanceof Error ? err.message : String(err) }, 'qmemman.sock: request failed; FAIL');
      reply('FAIL');
    });
  }

  async function start(): Promise<void> {
    if (started || closed) return;
    started = true;
    quiet?.();
    const req = parseQmemmanRequest(buf.subarray(0, 1024).toString('latin1'));
    const release = await admission.mutex.acquire();
    if (closed) return release();
    unlock = release;
    holdTimer = opts.clock.setTimer(opts.holdMaxMs, () => {
      opts.logger?.warn({ conn, holdMaxMs: opts.holdMaxMs }, 'qmemman.sock: client held the lock too long; closing it');
      sock.destroy();
    });
    if (req.kind === 'invalid') {
      opts.logger?.warn({ conn, bytes: buf.length }, 'qmemman.sock: invalid request');
      return reply('INVALID_ARG');
    }
    if (req.kind === 'balloon') {
      const d = await admission.reserveLocked({
        forName: owner,
        kib: Math.ceil(req.bytes / 1024),
        timeoutMs: opts.holdMaxMs,
        cancelled: () => closed,
        anyNewDomain: true,
      });
      if (d.ok && closed) return void admission.release(d.id, 'qmemman.sock client disconnected');
      if (d.ok) reservation = d.id;
      return reply(d.ok ? 'OK' : 'FAIL');
    }
    reply((await setMem(req.targets, admission, manager, opts, () => closed, owner)) ? 'OK' : 'FAIL');
  }
}

/**
 * qmemman's do_balloon_dom: holds each domain at the given size (0 = its floor) through a pin
 * the policy honours while this connection lives, then waits until each is within 10% of it,
 * failing when the domains gave back less than the rate rule over a period.
 */
async function setMem(
  targets: { domid: number; bytes: number }[],
  admission: Admission,
  manager: ManagerPort,
  opts: QmemmanOptions,
  closed: () => boolean,
  owner: string,
): Promise<boolean> {
  if (!admission.book.pinsWired) {
    opts.logger?.warn({ conn: owner }, 'qmemman.sock: set-mem needs the manager to run withAdmissionPins(book); FAIL');
    return false;
  }
  const floors = new Map(manager.lastDecisions().map((d) => [d.domid, d.floorKib]));
  const want = new Map<number, number>();
  for (const t of targets) {
    const kib = t.bytes === 0 ? floors.get(t.domid) : Math.ceil(t.bytes / 1024);
    // Like qmemman, a domain with no known preferred size (never reported) is skipped.
    if (kib === undefined || kib <= 0) continue;
    want.set(t.domid, kib);
  }
  for (const [domid, kib] of want) admission.book.pin(domid, kib, owner);
  opts.logger?.info({ conn: owner, targets: Object.fromEntries(want) }, 'qmemman.sock: set-mem');
  manager.requestPass();
  const window = new RateWindow(opts.rule);
  for (;;) {
    const snap = manager.lastSnapshot();
    const actual = new Map((snap?.vms ?? []).map((vm) => [vm.domid, vm.actualKib]));
    const pending = [...want].filter(([domid, kib]) => actual.has(domid) && Math.round((actual.get(domid)! / kib) * 100) / 100 > 1.1);
    if (pending.length === 0) return true;
    if (closed()) return false;
    window.add({ atMs: opts.clock.now(), kib: -pending.reduce((s, [domid]) => s + actual.get(domid)!, 0) });
    if (window.tooSlow()) {
      opts.logger?.warn({ conn: owner, pending: pending.map(([d]) => d) }, 'qmemman.sock: set-mem too slow; FAIL');
      return false;
    }
    manager.requestPass();
    await opts.clock.sleep(opts.pollMs);
  }
}
