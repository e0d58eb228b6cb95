/**
 * A guest's side of a xenstore ring (struct xenstore_domain_interface, xs_wire.h) for tests:
 * the shim makes the C daemon map <ringDir>/ring-<domid> as that domain's ring page and
 * wake up on any byte written to the FIFO <ringDir>/kick (its "event channel").
 *
 * Node has no mmap, so the page is accessed with pread/pwrite on the same file; Linux keeps
 * those coherent with the daemon's shared mapping. Data is written before the index that
 * publishes it (separate syscalls, so in order). The response ring is polled.
 */
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Transport, TransportFactory } from '../../src/xenstore/transport.js';

const RING_SIZE = 1024;
const OFF_REQ = 0;
const OFF_RSP = 1024;
const OFF_IDX = 2048; // req_cons, req_prod, rsp_cons, rsp_prod (uint32 LE)

export function ringTransport(ringDir: string, domid: number, opts: { pollMs?: number } = {}): TransportFactory {
  return async (sink) => {
    const fd = openSync(path.join(ringDir, `ring-${domid}`), 'r+');
    const kickFd = openSync(path.join(ringDir, 'kick'), constants.O_WRONLY | constants.O_NONBLOCK);
    const idx = Buffer.alloc(16);
    const u32 = Buffer.alloc(4);
    const out: Buffer[] = [];
    let closed = false;

    const readIdx = () => {
      readSync(fd, idx, 0, 16, OFF_IDX);
      return { reqCons: idx.readUInt32LE(0), reqProd: idx.readUInt32LE(4), rspCons: idx.readUInt32LE(8), rspProd: idx.readUInt32LE(12) };
    };
    const setIdx = (which: 4 | 8, v: number) => {
      u32.writeUInt32LE(v >>> 0, 0);
      writeSync(fd, u32, 0, 4, OFF_IDX + which);
    };
    const kick = () => {
      try {
        writeSync(kickFd, Buffer.from('k'));
      } catch {
        // FIFO full: the daemon has wake-ups pending anyway
      }
    };

    const pump = () => {
      if (closed) return;
      let kicked = false;
      const i = readIdx();
      // Requests: copy as much as the ring has room for.
      let prod = i.reqProd;
      while (out.length > 0) {
        const space = RING_SIZE - ((prod - i.reqCons) >>> 0);
        if (space <= 0) break;
        const head = out[0]!;
        const n = Math.min(space, head.length, RING_SIZE - (prod % RING_SIZE));
        writeSync(fd, head, 0, n, OFF_REQ + (prod % RING_SIZE));
        prod = (prod + n) >>> 0;
        if (n === head.length) out.shift();
        else out[0] = head.subarray(n);
      }
      if (prod !== i.reqProd) {
        setIdx(4, prod);
        kicked = true;
      }
      // Responses: take everything published.
      let cons = i.rspCons;
      const avail = (i.rspProd - cons) >>> 0;
      if (avail > 0 && avail <= RING_SIZE) {
        const data = Buffer.alloc(avail);
        let got = 0;
        while (got < avail) {
          const n = Math.min(avail - got, RING_SIZE - (cons % RING_SIZE));
          readSync(fd, data, got, n, OFF_RSP + (cons % RING_SIZE));
          got += n;
          cons = (cons + n) >>> 0;
        }
        setIdx(8, cons);
        kicked = true;
        if (kicked) kick();
        sink.onData(data);
        return;
      }
      if (kicked) kick();
    };

    // Idle: poll every pollMs (watch events). Right after a request: spin on setImmediate for
    // a couple of milliseconds, since the reply usually comes within tens of microseconds.
    const timer = setInterval(pump, opts.pollMs ?? 1);
    let spinUntil = 0;
    let spinning = false;
    const spin = () => {
      pump();
      if (!closed && performance.now() < spinUntil) setImmediate(spin);
      else spinning = false;
    };
    const t: Transport = {
      describe: `ring:${ringDir}/ring-${domid}`,
      write: (frame) => {
        out.push(frame);
        pump();
        spinUntil = performance.now() + 2;
        if (!spinning) {
          spinning = true;
          setImmediate(spin);
        }
      },
      close: () => {
        if (closed) return;
        closed = true;
        clearInterval(timer);
        closeSync(fd);
        closeSync(kickFd);
      },
    };
    return t;
  };
}
