import net from 'node:net';
import { lstat, unlink } from 'node:fs/promises';

/**
 * Makes `socketPath` free to listen on: a stale socket left by a crashed service is removed
 * (qmemman's leaked socket held its lock forever, qubes-issues #3265), but a socket a live
 * service still answers on, or anything that is not a socket, is never touched.
 */
export async function clearStaleSocket(socketPath: string): Promise<void> {
  let st;
  try {
    st = await lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket; refusing to replace it`);
  if (await answers(socketPath)) throw new Error(`${socketPath} is in use by a running service`);
  await unlink(socketPath);
}

function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
