import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPerm, parsePerm } from '../../src/xenstore/perms.js';
import { FrameDecoder, HEADER_SIZE, PAYLOAD_MAX, XsOp, encodeRequest, splitNul } from '../../src/xenstore/wire.js';

/** Pure framing tests; the behaviour against real daemons is in the conformance suite. */

type Frame = [type: number, reqId: number, txId: number, payload: string];

function collect(): { frames: Frame[]; bad: string[]; dec: FrameDecoder } {
  const frames: Frame[] = [];
  const bad: string[] = [];
  const dec = new FrameDecoder(
    (t, r, x, p) => frames.push([t, r, x, p.toString('latin1')]),
    (why) => bad.push(why),
  );
  return { frames, bad, dec };
}

describe('encodeRequest', () => {
  it('lays out header and NUL-terminated arguments; WRITE value unterminated', () => {
    const f = encodeRequest(XsOp.WRITE, 7, 3, ['/a/b'], 'v1')!;
    expect(f.readUInt32LE(0)).toBe(XsOp.WRITE);
    expect(f.readUInt32LE(4)).toBe(7);
    expect(f.readUInt32LE(8)).toBe(3);
    expect(f.readUInt32LE(12)).toBe(7);
    expect(f.subarray(HEADER_SIZE).toString('latin1')).toBe('/a/b\0v1');
  });

  it('never produces an empty payload for argument-less ops', () => {
    const f = encodeRequest(XsOp.TRANSACTION_START, 1, 0, [''])!;
    expect(f.readUInt32LE(12)).toBe(1);
    expect(f[HEADER_SIZE]).toBe(0);
  });

  it('counts UTF-8 bytes and refuses payloads over 4096', () => {
    expect(encodeRequest(XsOp.WRITE, 1, 0, ['/p'], 'x'.repeat(PAYLOAD_MAX - 3))).not.toBeNull();
    expect(encodeRequest(XsOp.WRITE, 1, 0, ['/p'], 'x'.repeat(PAYLOAD_MAX - 2))).toBeNull();
    const f = encodeRequest(XsOp.WRITE, 1, 0, ['/p'], 'é')!;
    expect(f.readUInt32LE(12)).toBe(5);
    expect(encodeRequest(XsOp.WRITE, 1, 0, ['/p'], 'é'.repeat(2047))).toBeNull();
  });
});

describe('FrameDecoder', () => {
  const frame = (t: number, r: number, x: number, p: string) => {
    const b = Buffer.alloc(HEADER_SIZE + Buffer.byteLength(p, 'latin1'));
    b.writeUInt32LE(t, 0);
    b.writeUInt32LE(r, 4);
    b.writeUInt32LE(x, 8);
    b.writeUInt32LE(b.length - HEADER_SIZE, 12);
    b.write(p, HEADER_SIZE, 'latin1');
    return b;
  };

  it('reassembles frames however the stream is cut', () => {
    const arbFrame = fc.tuple(fc.integer({ min: 0, max: 22 }), fc.nat(), fc.nat(), fc.string({ maxLength: 40 }));
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
        const all = Buffer.concat(frames.map(([t, r, x, p]) => frame(t, r, x, p)));
        const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        const { frames: got, bad, dec } = collect();
        let prev = 0;
        for (const p of [...points, all.length]) {
          dec.push(all.subarray(prev, p));
          prev = p;
        }
        expect(bad).toEqual([]);
        expect(got).toEqual(frames.map(([t, r, x, p]) => [t, r, x, Buffer.from(p, 'latin1').toString('latin1')]));
      }),
    );
  });

  it('keeps a partial frame safe when the transport reuses its buffer', () => {
    const { frames, dec } = collect();
    const f = frame(2, 9, 0, 'value');
    const chunk = Buffer.from(f.subarray(0, 10));
    dec.push(chunk);
    chunk.fill(0xff); // reused by the transport
    dec.push(f.subarray(10));
    expect(frames).toEqual([[2, 9, 0, 'value']]);
  });

  it('reports a frame announcing more than 4096 payload bytes', () => {
    const { frames, bad, dec } = collect();
    const h = Buffer.alloc(HEADER_SIZE);
    h.writeUInt32LE(PAYLOAD_MAX + 1, 12);
    dec.push(h);
    expect(frames).toEqual([]);
    expect(bad[0]).toMatch(/4097/);
  });
});

describe('payload helpers', () => {
  it('splitNul', () => {
    expect(splitNul(Buffer.from('a\0bc\0'))).toEqual(['a', 'bc']);
    expect(splitNul(Buffer.alloc(0))).toEqual([]);
    expect(splitNul(Buffer.from('x'))).toEqual(['x']);
  });

  it('permission strings round-trip and reject garbage', () => {
    for (const s of ['n0', 'r5', 'w65535', 'b7']) expect(formatPerm(parsePerm(s))).toBe(s);
    for (const s of ['', 'x1', 'r', 'r-1', 'r1a', 'R1']) expect(() => parsePerm(s)).toThrow();
    expect(() => formatPerm({ access: 'r', domid: 70000 })).toThrow();
  });
});
