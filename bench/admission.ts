import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { realClock } from '../src/clock.js';
import { EMPTY_HISTORY, type HostSnapshot, type VmDecision } from '../src/policy/types.js';
import { planAdmission } from '../dom0/admission/plan.js';
import { ReservationBook } from '../dom0/admission/book.js';
import { startAdmissionServer } from '../dom0/admission/server.js';
import { AdmissionConnection } from '../dom0/admission/client.js';
import { ReleaseReplySchema, ReserveReplySchema } from '../dom0/admission/protocol.js';
import type { ManagerPort } from '../dom0/admission/admission.js';

/**
 * `npm run bench -- admission`: the planner's cost per request at 10/200/1000 VMs (refusal path,
 * the most work: donors, shares and the shutdown search), and the latency of a fits-now
 * reservation over each socket (the manager is a static stand-in whose pass is instant, so
 * this is admission's own overhead: lock, fresh-facts handshake, book, socket I/O).
 */

const MiB = 1024;
const GiB = 1024 * 1024;

function host(n: number): { snapshot: HostSnapshot; decisions: VmDecision[] } {
  const vms = Array.from({ length: n }, (_, i) => ({
    domid: i, name: `vm${i}`, actualKib: (1 + (i % 7)) * GiB, targetKib: null, maxmemKib: 8 * GiB, staticMaxKib: 8 * GiB,
    paused: false, dying: false, stuck: false, signal: { kind: 'none' as const, why: 'bench' }, override: null, history: EMPTY_HISTORY,
  }));
  const decisions = vms.map((v, i) => ({
    domid: v.domid, name: v.name, idealKib: v.actualKib, floorKib: v.actualKib - ((i % 3) * 256 * MiB), targetKib: v.actualKib,
    maxmemKib: v.maxmemKib, change: 'hold' as const, reason: '', managed: true,
  }));
  return { snapshot: { nowMs: 0, totalKib: n * 8 * GiB, freeKib: 128 * MiB, reservations: [], vms }, decisions };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export default async function bench(argv: string[]): Promise<void> {
  const iters = Number(argv[0] ?? 300);
  const planUs: Record<number, number> = {};
  for (const n of [10, 200, 1000]) {
    const { snapshot, decisions } = host(n);
    const input = { snapshot, decisions, reservations: [], reserveKib: 64 * MiB, neededKib: n * 8 * GiB };
    for (let i = 0; i < 50; i++) planAdmission(input);
    const runs = n >= 1000 ? 200 : 2000;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) planAdmission(input);
    planUs[n] = ((performance.now() - t0) * 1000) / runs;
    console.log(`plan (refusal) at ${String(n).padStart(4)} VMs: ${planUs[n]!.toFixed(1)} µs`);
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'xmem-bench-admission-'));
  const { snapshot, decisions } = host(20);
  let snap: HostSnapshot = { ...snapshot, freeKib: 64 * GiB };
  const manager: ManagerPort = {
    lastSnapshot: () => snap,
    lastDecisions: () => decisions,
    requestPass: () => {
      snap = { ...snap, nowMs: realClock.now() };
    },
  };
  const book = new ReservationBook({ clock: realClock, timeoutMs: 60_000 });
  const server = await startAdmissionServer(manager, {
    book, clock: realClock, reserveKib: 64 * MiB,
    socketPath: path.join(dir, 'a.sock'), qmemmanSocketPath: path.join(dir, 'q.sock'),
  });
  try {
    const conn = await AdmissionConnection.connect(path.join(dir, 'a.sock'));
    const native: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      const r = await conn.request({ op: 'reserve', bytes: 1 << 30, for: 'bench' }, ReserveReplySchema);
      if (!r.ok) throw new Error(r.message);
      await conn.request({ op: 'release', id: r.id }, ReleaseReplySchema);
      native.push(performance.now() - t0);
    }
    conn.close();
    const qm: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(path.join(dir, 'q.sock'));
        s.on('data', (d) => {
          if (d.toString() !== 'OK\n') reject(new Error(`got ${JSON.stringify(d.toString())}`));
          s.end();
        });
        s.on('close', () => resolve());
        s.on('error', reject);
        s.write(`${1 << 30}\n`);
      });
      qm.push(performance.now() - t0);
    }
    const f = (x: number) => x.toFixed(2);
    console.log(`JSON socket reserve+release (fits now): p50 ${f(percentile(native, 50))} ms, p99 ${f(percentile(native, 99))} ms (${iters} runs)`);
    console.log(`qmemman.sock connect+"<bytes>\\n"→OK+close: p50 ${f(percentile(qm, 50))} ms, p99 ${f(percentile(qm, 99))} ms (${iters} runs)`);
    console.log(
      `RESULT admission plan_us_10=${planUs[10]!.toFixed(1)} plan_us_200=${planUs[200]!.toFixed(1)} plan_us_1000=${planUs[1000]!.toFixed(1)} ` +
        `native_p50_ms=${f(percentile(native, 50))} native_p99_ms=${f(percentile(native, 99))} qmemman_p50_ms=${f(percentile(qm, 50))} qmemman_p99_ms=${f(percentile(qm, 99))}`,
    );
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
