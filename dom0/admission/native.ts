import type net from 'node:net';
import type { Clock } from '../../src/clock.js';
import type { Admission, AdmissionLogger, Decision } from './admission.js';
import { MAX_LINE_BYTES, RequestSchema, type ListReply, type ReserveReply } from './protocol.js';

/**
 * One client of xmem's own admission socket (JSON lines, protocol.ts). Requests on a connection
 * are answered in order. Reservations it made without `detach` die with it: a client killed in
 * the middle of a VM start gives the memory back (the kernel closes its socket for us).
 */

export interface NativeOptions {
  clock: Clock;
  /** Longest hold a client may ask for. */
  maxTimeoutMs: number;
  defaultTimeoutMs: number;
  logger?: AdmissionLogger;
}

export function serveNative(sock: net.Socket, admission: Admission, opts: NativeOptions): void {
  const owned = new Set<string>();
  let closed = false;
  let buf = '';
  let chain: Promise<void> = Promise.resolve();

  const send = (obj: unknown) => {
    if (!closed && sock.writable) sock.write(JSON.stringify(obj) + '\n');
  };

  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) chain = chain.then(() => handle(line)).catch((err: unknown) => internalError(err));
    }
    if (Buffer.byteLength(buf) > MAX_LINE_BYTES) {
      opts.logger?.warn({ bytes: Buffer.byteLength(buf) }, 'admission: request line too long; connection closed');
      send({ ok: false, kind: 'invalid', message: `request line longer than ${MAX_LINE_BYTES} bytes` });
      buf = '';
      sock.end();
    }
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
    for (const id of owned) admission.release(id, 'its client disconnected');
    owned.clear();
  });

  // A bug must cost this request, never the service (an unhandled rejection would end it).
  function internalError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    opts.logger?.warn({ err: message }, 'admission: request failed');
    send({ ok: false, kind: 'invalid', message: `internal error: ${message}` });
  }

  async function handle(line: string): Promise<void> {
    if (closed) return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      send({ ok: false, kind: 'invalid', message: 'not JSON: send one JSON object per line' });
      return;
    }
    const parsed = RequestSchema.safeParse(json);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ');
      opts.logger?.warn({ err: msg }, 'admission: invalid request');
      send({ ok: false, kind: 'invalid', message: msg });
      return;
    }
    const req = parsed.data;
    if (req.op === 'release') {
      const ok = admission.release(req.id);
      owned.delete(req.id);
      send(ok ? { ok: true } : { ok: false, message: `no live reservation ${req.id} (released or expired)` });
      return;
    }
    if (req.op === 'list') {
      send(listReply(admission, opts.clock));
      return;
    }
    const timeoutMs = Math.min(opts.maxTimeoutMs, req.timeoutS !== undefined ? req.timeoutS * 1000 : opts.defaultTimeoutMs);
    const d = await admission.reserve({ forName: req.for, kib: Math.ceil(req.bytes / 1024), timeoutMs, cancelled: () => closed });
    if (d.ok && closed && !req.detach) {
      admission.release(d.id, 'its client disconnected');
      return;
    }
    if (d.ok && !req.detach) owned.add(d.id);
    send(reserveReply(d, req.detach, opts.clock));
  }
}

export function reserveReply(d: Decision, detached: boolean, clock: Clock): ReserveReply {
  if (d.ok) {
    return {
      ok: true, id: d.id, forName: d.forName, kib: d.kib, how: d.how, waitedMs: d.waitedMs, freeKib: d.freeKib,
      donors: d.donors, expiresInS: Math.round((d.expiresAtMs - clock.now()) / 1000), detached, message: d.message,
    };
  }
  return {
    ok: false, kind: d.kind, message: d.message, forName: d.forName, kib: d.kib,
    ...(d.refusal ? { refusal: d.refusal } : {}),
    ...(d.stuck ? { stuck: d.stuck } : {}),
  };
}

export function listReply(admission: Admission, clock: Clock): ListReply {
  const now = clock.now();
  return {
    ok: true,
    reservations: admission.book.list().map((r) => ({
      id: r.id, forName: r.forName, kib: r.kib, state: r.state,
      ageS: Math.round((now - r.sinceMs) / 1000), expiresInS: Math.round((r.expiresAtMs - now) / 1000),
    })),
    refusals: admission.book.refusals(),
  };
}
