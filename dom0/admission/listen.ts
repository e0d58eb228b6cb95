import net from 'node:net';
import { chmod, chown, mkdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { clearStaleSocket } from '../state/socket-file.js';

/**
 * Listens on a unix socket with the access the admin chose: 0600 (root only) by default, or
 * 0660 owned by `group` when one is given. libuv opens every socket with SOCK_CLOEXEC, so no
 * process the service spawns (xl) inherits the listener or a client's connection.
 */

export interface ListenOptions {
  socketPath: string;
  /** Group allowed to connect (name or numeric gid): the socket becomes 0660 in that group. */
  group?: string | number;
  /** Explicit file mode; default 0600, or 0660 with a group. */
  mode?: number;
}

export async function resolveGid(group: string | number): Promise<number> {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  const text = await readFile('/etc/group', 'utf8');
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new Error(`no such group: ${group}`);
}

export async function listenUnix(server: net.Server, opts: ListenOptions): Promise<() => Promise<void>> {
  const gid = opts.group !== undefined ? await resolveGid(opts.group) : null;
  const mode = opts.mode ?? (gid !== null ? 0o660 : 0o600);
  await mkdir(path.dirname(opts.socketPath), { recursive: true, mode: 0o755 });
  await clearStaleSocket(opts.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Between listen() and chmod() the socket has the umask's mode; the service runs with 077.
  if (gid !== null) await chown(opts.socketPath, -1, gid);
  await chmod(opts.socketPath, mode);
  return async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(opts.socketPath).catch(() => {});
  };
}
