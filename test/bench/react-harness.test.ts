/**
 * The react benchmark's harness, run small: the real Manager, the Node and C bare reactors and
 * the C floor driver over the real C xenstored, forked from the same bundle the bench runs.
 * The figures are not checked (a noisy machine); that every peer answered, that the xmem
 * samples were matched with the manager's log (their phases are computed), that the manager
 * ran with its GC collector on, and that the numbers are ordered, is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { bundleReact, buildNative } from '../../bench/policy.js';
import type { ReactResult } from '../../bench/_react.js';

const benchDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
const dir = mkdtempSync(path.join(tmpdir(), 'xmem-react-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('react benchmark harness', () => {
  it('measures xmem, both bare reactors and the C floor, and matches its samples with the manager log', async () => {
    const bundle = await bundleReact(benchDir, dir);
    const native = await buildNative(benchDir, dir);
    expect(native.error).toBeUndefined();
    const { stdout } = await execa('node', [
      bundle.file, '--n', '3', '--warmup-passes', '5', '--quiet-samples', '20', '--busy-samples', '30',
      '--native', path.join(dir, 'bare-reactor'), '--floor-driver', path.join(dir, 'floor-driver'),
    ], { env: { XMEM_PEER_DIR: bundle.peerDir }, timeout: 90_000 });
    const results = JSON.parse(stdout.trim().split('\n').pop()!) as ReactResult[];
    expect(results.map((r) => r.label)).toEqual([
      'quiet host, report every ~105 ms, 20 samples', 'busy host, report every ~25 ms, 30 samples',
    ]);
    for (const r of results) {
      for (const [lo, hi] of [[r.p50Ms, r.p99Ms], [r.bareP50Ms, r.bareP99Ms], [r.nativeP50Ms, r.nativeP99Ms], [r.floor?.p50Ms, r.floor?.p99Ms]]) {
        expect(lo).toBeGreaterThan(0);
        expect(hi).toBeGreaterThanOrEqual(lo!);
      }
      expect(r.floor!.maxMs).toBeGreaterThanOrEqual(r.floor!.p99Ms);
      // The xmem samples found their watch, read and write in the manager's log.
      expect(r.phasesP50).not.toBeNull();
      expect(r.phasesTail).not.toBeNull();
      for (const v of Object.values(r.phasesP50!)) expect(v).toBeGreaterThanOrEqual(0);
      expect(r.passP50Ms).toBeGreaterThan(0);
      // The manager-side interval starts after the driver's (at the watch) and ends about when
      // it does (the ack and the driver's watch event leave xenstored together).
      expect(r.watchToAckP50Ms).toBeGreaterThan(0);
      expect(r.watchToAckP99Ms).toBeGreaterThanOrEqual(r.watchToAckP50Ms!);
      expect(r.watchToAckP50Ms).toBeLessThanOrEqual(r.p99Ms);
      // The manager ran as the unit starts it (--expose-gc), its collector on; the log's
      // young-generation readings gave a per-pass allocation.
      expect(r.gcBetweenPasses).toBe('on');
      expect(r.allocKibPerPass).toBeGreaterThan(0);
      expect(r.gcInSamplePct).toBeGreaterThanOrEqual(0);
      expect(r.gcInSamplePct).toBeLessThanOrEqual(100);
    }
  }, 120_000);
});
