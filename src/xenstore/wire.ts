/**
 * xenstore wire format (xs_wire.h, Xen 4.17): a 16-byte header `type, req_id, tx_id, len`
 * (uint32, host order = little-endian on x86) followed by `len` payload bytes.
 * Pure encoding/decoding only; no I/O here.
 */

export const XsOp = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;
export type XsOpCode = (typeof XsOp)[keyof typeof XsOp];

const opNames = new Map<number, string>(Object.entries(XsOp).map(([k, v]) => [v, k]));
export const opName = (op: number): string => opNames.get(op) ?? `OP_${op}`;

export const HEADER_SIZE = 16;
/** Largest payload the daemons accept (C drops the connection above it, O desynchronises). */
export const PAYLOAD_MAX = 4096;

/**
 * Builds one request frame from NUL-separated string arguments. Every argument is followed by a
 * NUL except `rawTail` (WRITE's value, which the protocol sends unterminated). Returns null when
 * the payload would exceed PAYLOAD_MAX, so the caller can refuse it with a clear error.
 */
export function encodeRequest(op: number, reqId: number, txId: number, args: readonly string[], rawTail?: string): Buffer | null {
  let len = 0;
  for (const a of args) len += Buffer.byteLength(a) + 1;
  if (rawTail !== undefined) len += Buffer.byteLength(rawTail);
  if (len > PAYLOAD_MAX) return null;
  const buf = Buffer.allocUnsafe(HEADER_SIZE + len);
  buf.writeUInt32LE(op, 0);
  buf.writeUInt32LE(reqId, 4);
  buf.writeUInt32LE(txId, 8);
  buf.writeUInt32LE(len, 12);
  let off = HEADER_SIZE;
  for (const a of args) {
    off += buf.write(a, off);
    buf[off++] = 0;
  }
  if (rawTail !== undefined) buf.write(rawTail, off);
  return buf;
}

/** Payload size of a request, for error messages (same arithmetic as encodeRequest). */
export function payloadSize(args: readonly string[], rawTail?: string): number {
  let len = 0;
  for (const a of args) len += Buffer.byteLength(a) + 1;
  return len + (rawTail === undefined ? 0 : Buffer.byteLength(rawTail));
}

/** Receives one complete frame; `payload` is only valid during the call (it may be a view). */
export type FrameHandler = (type: number, reqId: number, txId: number, payload: Buffer) => void;

/**
 * Reassembles frames from a byte stream. Bounded: a header announcing more than PAYLOAD_MAX is
 * a protocol violation reported through `onBad` (the caller drops the connection).
 */
export class FrameDecoder {
  private rest: Buffer | null = null;

  constructor(
    private readonly onFrame: FrameHandler,
    private readonly onBad: (why: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.rest !== null) {
      buf = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let off = 0;
    const end = buf.length;
    while (end - off >= HEADER_SIZE) {
      const len = buf.readUInt32LE(off + 12);
      if (len > PAYLOAD_MAX) {
        this.onBad(`frame announces ${len} payload bytes (max ${PAYLOAD_MAX})`);
        return;
      }
      if (end - off < HEADER_SIZE + len) break;
      const type = buf.readUInt32LE(off);
      const reqId = buf.readUInt32LE(off + 4);
      const txId = buf.readUInt32LE(off + 8);
      const p = off + HEADER_SIZE;
      off = p + len;
      this.onFrame(type, reqId, txId, buf.subarray(p, off));
    }
    // Copy the partial frame: the chunk's memory may be reused by the transport.
    if (off < end) this.rest = Buffer.from(buf.subarray(off, end));
  }

  reset(): void {
    this.rest = null;
  }
}

/** Splits `a\0b\0` into ['a','b']; a missing final NUL still yields the last field. */
export function splitNul(payload: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = payload.indexOf(0, start);
    if (i < 0) {
      if (start < payload.length) out.push(payload.toString('utf8', start));
      return out;
    }
    out.push(payload.toString('utf8', start, i));
    start = i + 1;
  }
}

/** The first NUL-terminated string of a payload (`OK\0`, `ENOENT\0`, `/local/domain/3\0`). */
export function firstString(payload: Buffer): string {
  const i = payload.indexOf(0);
  return payload.toString('utf8', 0, i < 0 ? payload.length : i);
}
