import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Transport, TransportFactory } from './transport.js';
import { HEADER_SIZE, PAYLOAD_MAX } from './wire.js';

/**
 * The /dev/xen/xenbus character device (a guest, or dom0 without a daemon socket). The kernel
 * driver speaks the same framing as the socket. Node cannot poll a character device, so reads
 * are blocking reads on libuv's thread pool, one at a time; each read returns whole queued
 * messages or part of one (the client's decoder reassembles). Writes go through the same fd.
 * Caveats: each open device holds one of libuv's thread-pool threads (4 by default) in a
 * blocking read, so a process should keep one connection per device; and a read blocked in
 * the kernel cannot be cancelled, so after close() it ends only when the next message
 * arrives, the device goes away, or the process exits.
 */
export function xenbusTransport(devicePath = '/dev/xen/xenbus'): TransportFactory {
  return async (sink) => {
    // O_NOCTTY: harmless for xenbus, and keeps a terminal stand-in (tests) from becoming ours.
    const fh: FileHandle = await open(devicePath, constants.O_RDWR | constants.O_NOCTTY);
    let closed = false;
    const buf = Buffer.allocUnsafe(HEADER_SIZE + PAYLOAD_MAX);
    // Writes are serialised so frames never interleave on the fd.
    let writing: Promise<unknown> = Promise.resolve();

    const fail = (err: Error) => {
      if (closed) return;
      closed = true;
      void fh.close().catch(() => {});
      sink.onClose(err);
    };

    void (async () => {
      while (!closed) {
        let n: number;
        try {
          ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
        } catch (e) {
          fail(e as Error);
          return;
        }
        if (closed) return;
        if (n === 0) {
          fail(new Error(`${devicePath}: end of file`));
          return;
        }
        sink.onData(buf.subarray(0, n));
      }
    })();

    const t: Transport = {
      describe: `xenbus:${devicePath}`,
      write: (frame) => {
        writing = writing.then(() => (closed ? undefined : fh.write(frame, 0, frame.length, null))).catch((e: Error) => fail(e));
      },
      close: () => {
        if (closed) return;
        closed = true;
        void fh.close().catch(() => {});
      },
    };
    return t;
  };
}
