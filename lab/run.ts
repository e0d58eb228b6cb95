/**
 * The lab's host-side runner: builds the images (lab/build.sh), boots Xen + dom0 under QEMU
 * (software emulation), lets dom0 run the scenarios in test/xen/ and follows the serial console,
 * echoing the PASS:/FAIL:/INFO:/BENCH: lines dom0 prints.
 *
 *   npm run test:xen [-- SCENARIO...] [--no-build] [--retry-failed] [--shell]
 *
 * Exit code: 0 when every scenario line is PASS, 1 on any FAIL, a dom0 crash, a timeout or no
 * result at all, 2 on bad arguments. The full console is kept in lab/out/serial.log.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const LAB_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(LAB_DIR);
export const OUT_DIR = path.join(LAB_DIR, 'out');
export const SERIAL_LOG = path.join(OUT_DIR, 'serial.log');
/** Every scenario in running order (test/xen/<name>.sh). */
export const ALL_SCENARIOS = ['balloon', 'confined', 'restart', 'qmemman', 'admit', 'grow', 'stuck'];

export interface LabOptions {
  scenarios: string[];
  build: boolean;
  /** Whole run limit, seconds. */
  timeoutS: number;
  /** Called with each result line as it arrives. */
  onLine?: (line: string) => void;
}

export interface LabResult {
  lines: string[];
  passed: number;
  failed: number;
  /** Why the run itself went wrong (crash, timeout, no result), or null. */
  problem: string | null;
  wallS: number;
  peakRssMib: number;
}

const RESULT_LINE = /^(PASS|FAIL|INFO|BENCH|LAB):/;
// dom0's own panic (the guests' consoles never reach the serial line)
const CRASH = /\(XEN\) Hardware Dom0 crashed|^\[ *\d+\.\d+\] Kernel panic/;

export function qemuArgs(xmemlab: string, serial: string[]): string[] {
  const xen = 'dom0_mem=1024M,max:1024M dom0_max_vcpus=1 smap=0 console=com1 com1=115200,8n1 loglvl=warning guest_loglvl=warning noreboot';
  const dom0 = `console=hvc0 earlyprintk=xen panic=-1 quiet xmemlab=${xmemlab}`;
  return [
    '-accel', 'tcg,thread=multi,tb-size=256',
    // smap=0 above and no XSAVE here: both are needed under TCG (see lab/README.md)
    '-cpu', 'max,-xsave,-xsaveopt,-xsavec,-xsaves,-avx,-avx2,-fma,-f16c',
    '-smp', '2', '-m', '3072', '-no-reboot', '-display', 'none',
    '-kernel', path.join(LAB_DIR, 'cache/boot/xen.elf'), '-append', xen,
    '-initrd', `${path.join(LAB_DIR, 'cache/boot/vmlinuz')} ${dom0},${path.join(LAB_DIR, 'cache/dom0.cpio.zst')}`,
    '-virtfs', `local,path=${ROOT},mount_tag=host,security_model=none,readonly=on,id=host`,
    '-virtfs', `local,path=${OUT_DIR},mount_tag=out,security_model=none,id=out`,
    ...serial,
  ];
}

/** Parses result lines (from a live run or a saved serial log). */
export function resultLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r/g, ''))
    .filter((l) => RESULT_LINE.test(l));
}

export function build(): void {
  const r = spawnSync('bash', [path.join(LAB_DIR, 'build.sh')], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`lab/build.sh failed (exit ${r.status})`);
}

export async function runLab(opts: LabOptions): Promise<LabResult> {
  if (opts.build) build();
  mkdirSync(OUT_DIR, { recursive: true });
  rmSync(SERIAL_LOG, { force: true });
  const t0 = Date.now();
  const qemu = spawn('qemu-system-x86_64', qemuArgs(opts.scenarios.join('+'), ['-monitor', 'none', '-serial', `file:${SERIAL_LOG}`]), {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let exited = false;
  qemu.on('exit', () => (exited = true));

  const lines: string[] = [];
  let problem: string | null = null;
  let peakRssMib = 0;
  let offset = 0;
  let partial = '';
  const buf = Buffer.alloc(1 << 16);
  const drain = () => {
    if (!existsSync(SERIAL_LOG)) return;
    const fd = openSync(SERIAL_LOG, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, offset)) > 0; offset += n) partial += buf.toString('latin1', 0, n);
    } finally {
      closeSync(fd);
    }
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const raw of parts) {
      const line = raw.replace(/\r/g, '');
      if (CRASH.test(line)) problem ??= `dom0 crashed: ${line}`;
      if (RESULT_LINE.test(line)) {
        lines.push(line);
        opts.onLine?.(line);
      }
    }
  };
  while (!exited) {
    await new Promise((r) => setTimeout(r, 500));
    drain();
    peakRssMib = Math.max(peakRssMib, rssMib(qemu.pid));
    if (problem) break;
    if (Date.now() - t0 > opts.timeoutS * 1000) {
      problem = `timed out after ${opts.timeoutS} s`;
      break;
    }
  }
  if (!exited) {
    qemu.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
  }
  drain();
  const passed = lines.filter((l) => l.startsWith('PASS:')).length;
  const failed = lines.filter((l) => l.startsWith('FAIL:')).length;
  if (!problem && !lines.includes('LAB: done')) problem = 'dom0 never reported the end of the scenarios';
  if (!problem && passed === 0) problem = 'no PASS line at all';
  return { lines, passed, failed, problem, wallS: (Date.now() - t0) / 1000, peakRssMib };
}

function rssMib(pid: number | undefined): number {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Interactive: dom0 root shell on this terminal (Ctrl-a x quits QEMU). */
function shell(): number {
  const r = spawnSync('qemu-system-x86_64', qemuArgs('shell', ['-nographic', '-serial', 'mon:stdio']), { stdio: 'inherit' });
  return r.status ?? 1;
}

async function main(argv: string[]): Promise<number> {
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = [...flags].filter((f) => !['--no-build', '--shell', '--retry-failed'].includes(f)).concat(names.filter((n) => !ALL_SCENARIOS.includes(n)));
  if (unknown.length) {
    process.stderr.write(`lab: unknown ${unknown.join(', ')}\nusage: npm run test:xen -- [${ALL_SCENARIOS.join('|')}]... [--no-build] [--retry-failed] [--shell]\n`);
    return 2;
  }
  if (flags.has('--shell')) {
    if (!flags.has('--no-build')) build();
    return shell();
  }
  const scenarios = names.length ? names : ALL_SCENARIOS;
  const timeoutS = Number(process.env.LAB_TIMEOUT_S ?? 3000);
  const onLine = (l: string) => process.stdout.write(l + '\n');
  let res = await runLab({ scenarios, build: !flags.has('--no-build'), timeoutS, onLine });
  let failed = summary(res);
  if (failed > 0 && flags.has('--retry-failed')) {
    // Emulation is slow and its timing noisy: a scenario that failed gets one more chance in a
    // fresh boot, and both results are printed. A scenario failing twice fails the run.
    const again = toRetry(res, scenarios);
    const first = `${res.passed} passed, ${failed} failed`;
    renameSync(SERIAL_LOG, SERIAL_LOG.replace(/\.log$/, '-first.log'));
    process.stdout.write(`lab: first run ${first}; retrying once in a fresh boot: ${again.join(' ')}\n`);
    res = await runLab({ scenarios: again, build: false, timeoutS, onLine });
    failed = summary(res);
    process.stdout.write(`lab: the retry decides (first run: ${first}, serial log lab/out/serial-first.log)\n`);
  }
  process.stdout.write(`xen: ${res.passed} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

function summary(res: LabResult): number {
  process.stdout.write(`lab: QEMU wall ${res.wallS.toFixed(0)} s, peak RSS ${res.peakRssMib} MiB, serial log ${path.relative(ROOT, SERIAL_LOG)}\n`);
  if (res.problem) process.stdout.write(`FAIL: lab: ${res.problem}\n`);
  return res.failed + (res.problem ? 1 : 0);
}

/** The scenarios that printed a FAIL line, and those a crash or a timeout kept from ending. */
export function toRetry(res: Pick<LabResult, 'lines'>, scenarios: string[]): string[] {
  const failedNames = new Set(res.lines.map((l) => /^FAIL: ([a-z]+):/.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  const ended = new Set(res.lines.map((l) => /^LAB: scenario ([a-z]+) end/.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  return scenarios.filter((s) => failedNames.has(s) || !ended.has(s));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
