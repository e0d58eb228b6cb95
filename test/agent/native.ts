import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Builds the helper exactly as `npm run build:agent` does (domU-agent/native/build.sh) into a
 * temp dir. Returns its path, or the reason there is none (no C compiler). With CI=true a
 * missing compiler is an error, not a reason.
 */
export function buildHelper(): { path: string } | { skip: string } {
  const out = mkdtempSync(path.join(os.tmpdir(), 'xmem-helper-'));
  const r = spawnSync('sh', [path.join(root, 'domU-agent/native/build.sh'), out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`domU-agent/native/build.sh failed (${r.status}):\n${r.stderr}`);
  const bin = path.join(out, 'xmem-psi-trigger');
  if (existsSync(bin)) return { path: bin };
  const why = r.stderr.trim().split('\n')[0] ?? 'not built';
  if (process.env.CI === 'true') throw new Error(`CI=true but the helper was not built: ${why}`);
  return { skip: why };
}

/** This process's effective capabilities include CAP_SYS_RESOURCE (bit 24). */
export function hasSysResource(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? (BigInt(`0x${m[1]}`) & (1n << 24n)) !== 0n : false;
}

/**
 * How to run the helper with CAP_SYS_RESOURCE, as a guest's root has it. A sandbox whose root
 * lacks it (this development machine's does) gets it in a fresh user namespace: the kernel
 * checks the capability on the opener's credentials, which then carry the full set.
 * `wrapper` is a script to pass as --psi-trigger; null when the helper can run as it is.
 */
export function privileged(bin: string, dir: string): { cmd: string; pre: string[]; wrapper: string | null; note: string | null } {
  if (hasSysResource()) return { cmd: bin, pre: [], wrapper: null, note: null };
  const probe = spawnSync('unshare', ['-U', '-r', 'true']);
  if (probe.status !== 0) return { cmd: bin, pre: [], wrapper: null, note: 'no CAP_SYS_RESOURCE and no unshare -U: the trigger will be refused' };
  const wrapper = path.join(dir, 'xmem-psi-trigger-userns');
  writeFileSync(wrapper, `#!/bin/sh\nexec unshare -U -r ${JSON.stringify(bin)} "$@"\n`, { mode: 0o755 });
  return { cmd: 'unshare', pre: ['-U', '-r', bin], wrapper, note: 'this root lacks CAP_SYS_RESOURCE: the helper runs in a user namespace (unshare -U -r), which has it' };
}

/** The helper's lines, as they come. */
export class HelperProc {
  readonly child: ChildProcess;
  readonly lines: { at: number; line: string }[] = [];
  stderr = '';
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';
  private waiters: (() => void)[] = [];

  constructor(cmd: string, args: string[]) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('latin1').on('data', (d: string) => {
      const text = this.partial + d;
      const parts = text.split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) this.lines.push({ at: performance.now(), line });
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr!.setEncoding('latin1').on('data', (d: string) => (this.stderr += d));
    this.child.stdin!.on('error', () => undefined);
    this.exit = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  /** Resolves with the first line from index `from` on that matches, or null after `ms`. */
  async waitLine(pred: (line: string) => boolean, ms: number, from = 0): Promise<{ at: number; line: string } | null> {
    const deadline = performance.now() + ms;
    for (;;) {
      const hit = this.lines.slice(from).find((l) => pred(l.line));
      if (hit) return hit;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(line: string): void {
    this.child.stdin!.write(line);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

const HOG_LIMIT_MIB = 64;
const HOG_FILE_MIB = 128;
const readStallTotal = () => Number(/^some .* total=(\d+)/m.exec(readFileSync('/proc/pressure/memory', 'latin1'))![1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A real memory stall on demand: a child in a 64 MiB memory cgroup (v1 limit_in_bytes or v2
 * memory.max) that thrashes a 128 MiB file, so its page cache refaults all the time. `ready()`
 * prepares the file and waits for quiet (1.2 s without stall growth); `go()` starts the
 * thrashing and resolves at the first growth of /proc/pressure/memory's total (1 ms poll).
 */
export class CgroupHog {
  private constructor(
    private readonly cg: string,
    private readonly file: string,
  ) {}

  /** A hog, or why there can be none here (no memory controller, no PSI, not root). */
  static create(): CgroupHog | string {
    const v1 = '/sys/fs/cgroup/memory';
    const v2 = '/sys/fs/cgroup';
    const name = `xmem-hog-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    let cg: string;
    let limitFile: string;
    if (existsSync(path.join(v1, 'memory.limit_in_bytes'))) {
      cg = path.join(v1, name);
      limitFile = 'memory.limit_in_bytes';
    } else if (existsSync(path.join(v2, 'cgroup.controllers')) && readFileSync(path.join(v2, 'cgroup.subtree_control'), 'latin1').includes('memory')) {
      cg = path.join(v2, name);
      limitFile = 'memory.max';
    } else {
      return 'no memory cgroup controller here';
    }
    if (!existsSync('/proc/pressure/memory')) return 'no /proc/pressure/memory';
    try {
      mkdirSync(cg);
      writeFileSync(path.join(cg, limitFile), String(HOG_LIMIT_MIB * 1024 * 1024));
    } catch (e) {
      return `cannot create a memory cgroup: ${(e as Error).message}`;
    }
    return new CgroupHog(cg, path.join(os.tmpdir(), `${name}.thrash`));
  }

  private child: ChildProcess | null = null;

  /** Starts the hog and writes its file; resolves when the stall total has been still for 1.2 s. */
  async ready(): Promise<string | null> {
    const script = `
      const fs = require('fs');
      const size = Number(process.argv[2]) << 20, blk = Buffer.alloc(4096);
      const fd = fs.openSync(process.argv[1], 'w+');
      for (let o = 0; o < size; o += 1 << 20) fs.writeSync(fd, require('crypto').randomBytes(1 << 20), 0, 1 << 20, o);
      process.send('ready');
      process.on('message', (m) => { if (m === 'go') for (;;) fs.readSync(fd, blk, 0, 4096, Math.floor(Math.random() * (size / 4096)) * 4096); });
    `;
    const child = spawn(process.execPath, ['-e', script, this.file, String(HOG_FILE_MIB)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    this.child = child;
    // It joins the cgroup before it allocates, so its page cache is charged there.
    writeFileSync(path.join(this.cg, 'cgroup.procs'), String(child.pid));
    const ready = await Promise.race([
      new Promise<string | null>((resolve) => child.once('message', () => resolve(null))),
      new Promise<string>((resolve) => child.once('exit', (code, sig) => resolve(`hog exited (${code ?? sig}) before it was ready`))),
      sleep(30_000).then(() => 'hog not ready within 30 s'),
    ]);
    if (ready !== null) return ready;
    // Writing the file stalled too: wait for quiet (past the agent's 1 s stall gap).
    let quietSince = performance.now();
    let last = readStallTotal();
    for (const giveUp = performance.now() + 20_000; performance.now() < giveUp && performance.now() - quietSince < 1200; ) {
      await sleep(50);
      const now = readStallTotal();
      if (now !== last) quietSince = performance.now();
      last = now;
    }
    return null;
  }

  /**
   * Starts thrashing; resolves with the total before (`base`), and the time and total of the
   * first growth, or null after 10 s.
   */
  async go(): Promise<{ base: number; t0: number; total: number } | null> {
    const base = readStallTotal();
    this.child!.send('go');
    for (const deadline = performance.now() + 10_000; performance.now() < deadline; ) {
      const total = readStallTotal();
      if (total > base) return { base, t0: performance.now(), total };
      await sleep(1);
    }
    return null;
  }

  /** Stops the hog (the cgroup stays for the next ready()). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child) return;
    child.kill('SIGKILL');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(2000)]);
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.file, { force: true });
    await sleep(200);
    try {
      rmdirSync(this.cg);
    } catch {
      // a straggler still inside; the kernel frees it when it exits
    }
  }
}
