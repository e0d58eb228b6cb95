/**
 * `npm run bench -- xenstore [seconds]`: sequential XS_WRITE and XS_READ per second (one
 * request in flight) from the project's client against the real C xenstored (test/peer),
 * beside a raw-socket Python client (bench/xenstore_raw.py) and Debian's pyxs, all measured
 * in this run on the same daemon. Rounds alternate between the clients and the median
 * round is reported, so a noisy neighbour on the shared cores hits everyone alike.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startXenstored } from '../test/peer/daemon.js';
import { connectXenstore, type XenstoreConnection } from '../src/xenstore/client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);

interface Rates {
  write_ops: number;
  read_ops: number;
  /** Client CPU (user + system) per XS_WRITE, in µs: less sensitive to a busy machine than rates. */
  write_cpu_us: number;
}

async function rate(fn: () => Promise<unknown>, seconds: number): Promise<number> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  for (;;) {
    for (let i = 0; i < 100; i++) await fn();
    n += 100;
    const now = performance.now();
    if (now >= end) return n / ((now - start) / 1000);
  }
}

async function ours(xs: XenstoreConnection, seconds: number): Promise<Rates> {
  const key = '/bench/xmem/key';
  await rate(() => xs.write(key, '1048576'), 0.2); // warm-up (JIT)
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const write_ops = await rate(() => xs.write(key, '1048576'), seconds);
  const cpu = process.cpuUsage(c0);
  const write_cpu_us = (cpu.user + cpu.system) / (write_ops * ((performance.now() - t0) / 1000));
  const read_ops = await rate(() => xs.read(key), seconds);
  return { write_ops, read_ops, write_cpu_us };
}

async function python(script: string, socketPath: string, seconds: number, pythonPath?: string): Promise<Rates> {
  const env = pythonPath ? { ...process.env, PYTHONPATH: pythonPath } : process.env;
  const { stdout } = await run('python3', [path.join(here, script), socketPath, String(seconds)], { env });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Rates;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const k = (n: number) => `${(n / 1000).toFixed(1)}k`;

export default async function main(argv: string[]): Promise<void> {
  const seconds = Number(argv[0] ?? 1);
  const rounds = Number(argv[1] ?? 5);
  if (!(seconds > 0) || !(rounds >= 1)) {
    process.stderr.write('usage: npm run bench -- xenstore [seconds-per-measure] [rounds]\n');
    process.exit(2);
  }
  const daemon = await startXenstored({ impl: 'c' });
  const xs = await connectXenstore({ path: daemon.socketPath });
  const results: Record<'xmem' | 'raw' | 'pyxs', Rates[]> = { xmem: [], raw: [], pyxs: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      results.raw.push(await python('xenstore_raw.py', daemon.socketPath, seconds));
      results.xmem.push(await ours(xs, seconds));
      results.pyxs.push(await python('xenstore_pyxs.py', daemon.socketPath, seconds, daemon.pythonPath));
      process.stderr.write(`round ${r + 1}/${rounds} done\n`);
    }
  } finally {
    await xs.close();
    await daemon.stop();
  }
  const med = (who: keyof typeof results, what: keyof Rates) => median(results[who].map((x) => x[what]));
  const rows: [string, number, number, number][] = [
    ['xmem (TypeScript, this client)', med('xmem', 'write_ops'), med('xmem', 'read_ops'), med('xmem', 'write_cpu_us')],
    ['raw Python socket client', med('raw', 'write_ops'), med('raw', 'read_ops'), med('raw', 'write_cpu_us')],
    ['pyxs 0.4.2 (Debian)', med('pyxs', 'write_ops'), med('pyxs', 'read_ops'), med('pyxs', 'write_cpu_us')],
  ];
  console.log(`C xenstored 4.17 (Debian), unix socket, one request in flight; median of ${rounds} rounds of ${seconds}s`);
  console.log(`${'client'.padEnd(32)} ${'XS_WRITE/s'.padStart(11)} ${'XS_READ/s'.padStart(11)} ${'CPU µs/write'.padStart(13)}`);
  for (const [name, w, rd, cpu] of rows) {
    console.log(`${name.padEnd(32)} ${k(w).padStart(11)} ${k(rd).padStart(11)} ${cpu.toFixed(1).padStart(13)}`);
  }
  const [x, raw, py] = rows;
  // Ratios per round (the clients of one round ran back to back), then their median: the
  // machine's load drifts between rounds far more than within one.
  const ratioRaw = median(results.xmem.map((r, i) => r.write_ops / results.raw[i]!.write_ops));
  const ratioPyxs = median(results.xmem.map((r, i) => r.write_ops / results.pyxs[i]!.write_ops));
  console.log(`per-round XS_WRITE/s xmem | raw | pyxs: ${results.xmem.map((r, i) => `${k(r.write_ops)}|${k(results.raw[i]!.write_ops)}|${k(results.pyxs[i]!.write_ops)}`).join('  ')}`);
  console.log(`write ratio (median of per-round ratios) vs raw Python ${ratioRaw.toFixed(2)} (goal ≥ 0.9), vs pyxs ${ratioPyxs.toFixed(2)} (goal ≥ 1.5)`);
  console.log(
    `RESULT xenstore write_ops=${Math.round(x![1])} read_ops=${Math.round(x![2])} raw_write_ops=${Math.round(raw![1])} ` +
      `pyxs_write_ops=${Math.round(py![1])} ratio_raw=${ratioRaw.toFixed(2)} ratio_pyxs=${ratioPyxs.toFixed(2)}`,
  );
}
