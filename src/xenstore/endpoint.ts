import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TransportFactory } from './transport.js';
import { unixTransport } from './unix-transport.js';
import { xenbusTransport } from './xenbus-transport.js';

/**
 * Default endpoint, chosen as libxenstore does: XENSTORED_PATH, else $XENSTORED_RUNDIR/socket,
 * else /var/run/xenstored/socket — and in a guest, where no socket exists, /dev/xen/xenbus.
 */
export function defaultXenstorePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XENSTORED_PATH) return env.XENSTORED_PATH;
  const sock = path.join(env.XENSTORED_RUNDIR || '/var/run/xenstored', 'socket');
  if (!env.XENSTORED_RUNDIR && !existsSync(sock) && existsSync('/dev/xen/xenbus')) return '/dev/xen/xenbus';
  return sock;
}

/** A character device (the xenbus device) gets the device transport; anything else is a socket. */
export function transportFor(p: string): TransportFactory {
  let isChar = false;
  try {
    isChar = statSync(p).isCharacterDevice();
  } catch {
    // missing: the socket connect reports ENOENT
  }
  return isChar ? xenbusTransport(p) : unixTransport(p);
}
