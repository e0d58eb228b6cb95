/**
 * Real-peer harness: runs Debian's C xenstored or oxenstored (unpacked by install.sh, no Xen,
 * LD_PRELOAD shim) on a private socket in a temp dir. Each test file starts its own daemon.
 *
 *   const skip = peerSkipReason();            // null = available
 *   const d = await startXenstored({ impl: 'ocaml' });
 *   ... connectXenstore({ path: d.socketPath }) ... ; await d.stop();
 *
 * Off Debian the install fails and peerSkipReason() says why (callers describe.skip with one
 * loud line). With CI=true it returns null anyway, so the tests run and fail loudly instead.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type PeerImpl = 'c' | 'ocaml';

export interface PeerDaemon {
  socketPath: string;
  impl: PeerImpl;
  /** For Debian's xenstore-* tools: XENSTORED_PATH and LD_LIBRARY_PATH. */
  env: Record<string, string>;
  /** Directory with xenstore-read, xenstore-write, xenstore-ls, ... */
  toolsDir: string;
  /** PYTHONPATH that provides pyxs. */
  pythonPath: string;
  /** Shim ring directory (ring-<domid> files and the `kick` FIFO), for guest emulation (C only). */
  ringDir: string;
  /** The daemon's stdout/stderr (and oxenstored's logs live beside it). */
  logPath: string;
  pid(): number | undefined;
  /** Stops the daemon (SIGTERM; SIGKILL for oxenstored, which ignores SIGTERM for up to 15 s). */
  stop(): Promise<void>;
  /**
   * Stops the daemon (SIGTERM, or `signal`: SIGKILL = a crash) and starts a fresh one on the
   * same socket (the tree starts empty again).
   */
  restart(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
}

// XMEM_PEER_DIR: where install.sh is, for a bundled copy of this file (bench/_react-main.ts).
const here = process.env.XMEM_PEER_DIR ?? path.dirname(fileURLToPath(import.meta.url));
let installed: { cache: string } | { error: string } | null = null;

/** Installs (once per process) and returns the cache dir, or the reason it is unavailable. */
function install(): { cache: string } | { error: string } {
  if (installed) return installed;
  try {
    const out = execFileSync('bash', [path.join(here, 'install.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    installed = { cache: out.trim().split('\n').pop()! };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    installed = { error: (err.stderr?.trim().split('\n').pop() ?? err.message) || 'install failed' };
  }
  return installed;
}

/** The unpacked Debian tree (usr/include, usr/lib/x86_64-linux-gnu, ...); throws if unavailable. */
export function peerRoot(): string {
  const r = install();
  if ('error' in r) throw new Error(`real xenstore peers unavailable: ${r.error}`);
  return path.join(r.cache, 'root');
}

/** null when the real daemons can run here; otherwise why not. Never a reason when CI=true. */
export function peerSkipReason(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return process.env.CI === 'true' ? null : `real xenstored needs Debian 12 x86_64 (this is ${process.platform}/${process.arch})`;
  }
  const r = install();
  if ('error' in r) return process.env.CI === 'true' ? null : r.error;
  return null;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export async function startXenstored(opts: { impl?: PeerImpl } = {}): Promise<PeerDaemon> {
  const impl = opts.impl ?? 'c';
  const r = install();
  if ('error' in r) throw new Error(`real xenstored unavailable: ${r.error} (run test/peer/install.sh)`);
  const root = path.join(r.cache, 'root');
  const libDir = path.join(root, 'usr/lib/x86_64-linux-gnu');
  const binDir = path.join(root, 'usr/lib/xen-4.17/bin');
  const dir = mkdtempSync(path.join(os.tmpdir(), `xmem-xs-${impl}-`));
  const socketPath = path.join(dir, 'socket');
  const ringDir = path.join(dir, 'rings');
  const logPath = path.join(dir, 'daemon.log');
  mkdirSync(ringDir);

  let child: ChildProcess | undefined;
  const launch = async () => {
    rmSync(socketPath, { force: true });
    let argv: string[];
    if (impl === 'c') {
      argv = [path.join(binDir, 'xenstored'), '-N'];
      if (process.env.XMEM_XS_TRACE === '1') argv.push('-T', path.join(dir, 'trace.log'));
    } else {
      const conf = path.join(dir, 'oxenstored.conf');
      writeFileSync(
        conf,
        [
          `pid-file = ${dir}/oxenstored.pid`,
          'persistent = false',
          `xenstored-log-file = ${dir}/oxenstored.log`,
          `access-log-file = ${dir}/access.log`,
          'xenstored-port = /proc/xen/xsd_port',
          'xenstored-kva = /proc/xen/xsd_kva',
          '',
        ].join('\n'),
      );
      argv = [path.join(binDir, 'oxenstored'), '--no-fork', '--config-file', conf];
    }
    const out = openSync(logPath, 'a');
    child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', out, out],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        XENSTORED_RUNDIR: dir,
        XENSTORED_PATH: socketPath,
        XS_SHIM_RINGDIR: ringDir,
        LD_LIBRARY_PATH: libDir,
        LD_PRELOAD: path.join(r.cache, 'xs-nohv-shim.so'),
        XS_SHIM_PDEATHSIG: '1',
      },
    });
    closeSync(out);
    children.add(child);
    const c = child;
    c.once('exit', () => children.delete(c));
    await waitReady(c, socketPath, logPath);
  };

  const stop = async (signal?: 'SIGTERM' | 'SIGKILL') => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((res) => c.once('exit', () => res()));
    c.kill(signal ?? (impl === 'ocaml' ? 'SIGKILL' : 'SIGTERM'));
    c.kill('SIGCONT'); // a test may have stopped it (SIGSTOP) to hold a request in flight
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  };

  await launch();
  return {
    socketPath,
    impl,
    env: { XENSTORED_PATH: socketPath, LD_LIBRARY_PATH: libDir },
    toolsDir: path.join(root, 'usr/bin'),
    pythonPath: path.join(root, 'usr/lib/python3/dist-packages'),
    ringDir,
    logPath,
    pid: () => child?.pid,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async (o) => {
      await stop(o?.signal);
      await launch();
    },
  };
}

/** Ready = the socket answers a DIRECTORY / request (raw frame, so the harness tests nothing of ours). */
async function waitReady(child: ChildProcess, socketPath: string, logPath: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`xenstored exited (${child.exitCode ?? child.signalCode}): ${readLog(logPath)}`);
    }
    if (existsSync(socketPath) && (await probe(socketPath))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGKILL');
  throw new Error(`xenstored did not answer on ${socketPath} within 10 s: ${readLog(logPath)}`);
}

function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: socketPath });
    const frame = Buffer.alloc(18);
    frame.writeUInt32LE(1, 0); // XS_DIRECTORY
    frame.writeUInt32LE(1, 4);
    frame.writeUInt32LE(2, 12);
    frame.write('/\0', 16);
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write(frame));
    s.once('data', () => done(true));
  });
}

function readLog(logPath: string): string {
  try {
    return readFileSync(logPath, 'utf8').slice(-2000);
  } catch {
    return '(no log)';
  }
}
