/**
 * `npm run bench -- xenlab [--log lab/out/serial.log] [--no-build]`: real Xen under QEMU.
 * Boots the lab with the `balloon` and `grow` scenarios (or reads the serial log of an earlier
 * run) and reports, from the BENCH: lines dom0 printed:
 *  - grow_latency_ms: from the moment a guest starts allocating (pinning tmpfs) until its
 *    balloon's current_kb (its real allocation from Xen) has grown by 8 MiB, measured by the
 *    guest itself every 100 ms while xmem runs in dom0;
 *  - up_mib_s / down_mib_s: raw balloon rates, MiB moved over the time until `xl list` showed
 *    the new size after a memory/target write (polled every 0.2 s, so rates are lower bounds).
 * Goal: grow_latency_ms ≤ 2000 even under emulation.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, SERIAL_LOG, resultLines, runLab } from '../lab/run.js';

interface Move {
  dir: 'up' | 'down';
  mib: number;
  ms: number;
}

function field(line: string, key: string): number | null {
  const m = new RegExp(`\\b${key}=(\\d+)`).exec(line);
  return m ? Number(m[1]) : null;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function summarize(lines: string[]) {
  const moves: Move[] = [];
  const grow: number[] = [];
  const seen: number[] = [];
  for (const l of lines) {
    const b = /^BENCH: balloon (up|down) /.exec(l);
    if (b) {
      const mib = field(l, 'mib');
      const ms = field(l, 'ms');
      if (mib !== null && ms !== null && ms > 0) moves.push({ dir: b[1] as 'up' | 'down', mib, ms });
    }
    const g = field(l, 'guest_grow_ms');
    if (l.startsWith('BENCH: grow') && g !== null) grow.push(g);
    const d = field(l, 'dom0_seen_ms');
    if (l.startsWith('BENCH: grow') && d !== null) seen.push(d);
  }
  const rate = (dir: 'up' | 'down') => {
    const ms = moves.filter((m) => m.dir === dir);
    const mib = ms.reduce((a, m) => a + m.mib, 0);
    const t = ms.reduce((a, m) => a + m.ms, 0);
    return t > 0 ? (mib / t) * 1000 : null;
  };
  return { moves, grow, seen, up: rate('up'), down: rate('down'), growLatency: median(grow), dom0Seen: median(seen) };
}

const fmt = (x: number | null, digits = 0) => (x === null ? 'n/a' : x.toFixed(digits));

export default async function xenlab(argv: string[]): Promise<void> {
  const i = argv.indexOf('--log');
  let lines: string[];
  if (i >= 0) {
    const file = path.resolve(argv[i + 1] ?? SERIAL_LOG);
    lines = resultLines(readFileSync(file, 'latin1'));
    process.stdout.write(`xenlab: reading ${path.relative(ROOT, file)}\n`);
  } else {
    const res = await runLab({ scenarios: ['balloon', 'grow'], build: !argv.includes('--no-build'), timeoutS: 1200, onLine: (l) => process.stdout.write(l + '\n') });
    if (res.problem) process.stdout.write(`xenlab: lab problem: ${res.problem}\n`);
    process.stdout.write(`xenlab: QEMU wall ${res.wallS.toFixed(0)} s, peak RSS ${res.peakRssMib} MiB\n`);
    lines = res.lines;
  }
  const s = summarize(lines);
  process.stdout.write('\nballoon moves (memory/target write → xl list shows the size):\n');
  for (const m of s.moves) process.stdout.write(`  ${m.dir.padEnd(4)} ${String(m.mib).padStart(5)} MiB  ${String(m.ms).padStart(6)} ms  ${((m.mib / m.ms) * 1000).toFixed(0).padStart(5)} MiB/s\n`);
  process.stdout.write(`grow latency, guest-measured (allocation start → balloon +8 MiB): ${s.grow.join(', ') || 'none'} ms\n`);
  process.stdout.write(`grow seen from dom0 (allocation request → xl list +8 MiB, 0.2 s polling): ${s.seen.join(', ') || 'none'} ms\n`);
  process.stdout.write(`RESULT xenlab grow_latency_ms=${fmt(s.growLatency)} up_mib_s=${fmt(s.up)} down_mib_s=${fmt(s.down)}\n`);
}
