import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * The scenario file format (dom0/sim/scenarios/*.json). Sizes are MiB, times seconds.
 * See dom0/sim/README.md for a walk-through; every field is documented here.
 */

const mib = z.number().min(0).max(16 * 1024 * 1024);
const secs = z.number().min(0).max(7 * 24 * 3600);
const range = z.tuple([z.number().min(0), z.number().min(0)]).refine(([a, b]) => a <= b, 'range must be [low, high]');

/** A fake balloon driver (squeezed's simulator: ideal, hidden limits, stuck, intermittently stuck). */
export const BalloonSchema = z.strictObject({
  kind: z.enum(['ideal', 'lower-limit', 'upper-limit', 'stuck', 'intermittent']).default('ideal'),
  /** Growth rate; the real Linux driver on Xen grows in well under a second (xen-lab §5). */
  upMiBps: z.number().positive().default(1024),
  /** Shrink rate; measured ≈120 MiB/s on real Xen (576 MiB in 4-4.8 s, xen-lab §5). */
  downMiBps: z.number().positive().default(120),
  /** lower-limit: never gives memory below this; upper-limit: never takes memory above this. */
  limitMiB: mib.optional(),
  /** intermittent: stuck for intervalS, then moves for intervalS, and so on. */
  intervalS: z.number().positive().optional(),
});
export type BalloonSpec = z.infer<typeof BalloonSchema>;

/** One point of a workload trace; values between points are interpolated linearly. */
const PointSchema = z.strictObject({
  atS: secs,
  /** Anonymous memory the guest's programs want resident. */
  anonMiB: mib,
  /** Page-cache working set: file pages read over and over (refaults when evicted). */
  cacheMiB: mib,
});

export const WorkloadSchema = z.strictObject({
  description: z.string().optional(),
  points: z.array(PointSchema).min(1),
  /** The trace restarts every repeatS seconds (after the last point if absent: holds). */
  repeatS: z.number().positive().optional(),
  /** Committed_AS beyond anon demand: allocations made but never touched (MiB). */
  commitExtraMiB: mib.default(150),
  /** Files read once: they fill free memory as cold cache (reclaimable at no cost). */
  coldCacheMiB: mib.default(200),
  /** Random bursts on top of the trace (a browser opening tabs, a test suite). */
  bursts: z.strictObject({
    everyS: range,
    lastS: range,
    anonMiB: range,
    cacheMiB: range.default([0, 0]),
    /** A burst builds up over this long (tabs load one after another), then ends at once. */
    rampS: z.number().min(0).default(5),
  }).optional(),
  /** Each VM multiplies the trace by a random factor in this range (server fleets). */
  scale: range.default([1, 1]),
  /** Each VM starts its (repeating) trace at a random offset in this range, seconds, so a
   *  fleet's jobs and traffic peaks do not all land at the same instant. */
  phaseS: range.default([0, 0]),
});
export type WorkloadSpec = z.infer<typeof WorkloadSchema>;

export const VmSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/),
  /** dom0 is the VM with domid 0; other domids are assigned in start order. */
  dom0: z.boolean().default(false),
  /** Initial Xen allocation (the `memory=` of the VM config). */
  memoryMiB: mib,
  /** The VM's ceiling (`maxmem=`, written as memory/static-max). */
  maxMiB: mib,
  workload: z.string(),
  /** A name from `balloons` or an inline driver; absent = an ideal driver. */
  balloon: z.union([z.string(), BalloonSchema]).optional(),
  swapMiB: mib.default(1024),
  /** Xen allocation minus the guest's MemTotal (≈62 MiB measured, xen-lab §6.4). */
  gapMiB: mib.default(60),
  /** Start time; absent = running when the simulation begins. */
  startS: secs.optional(),
  stopS: secs.optional(),
  pauses: z.array(z.strictObject({ atS: secs, forS: z.number().positive() })).default([]),
  /** Runs the xmem agent (false: a guest that publishes nothing). */
  agent: z.boolean().default(true),
  /** Makes `count` copies named <name>-1 … <name>-N (start times spread by spreadS). */
  count: z.number().int().min(1).max(1000).default(1),
  spreadS: secs.default(0),
});
export type VmSpec = z.infer<typeof VmSchema>;

export const ScenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().min(1),
  seed: z.number().int().default(1),
  durationS: z.number().positive().max(24 * 3600),
  /** Simulation step: balloons and guests move every tickMs. */
  tickMs: z.number().int().min(10).max(1000).default(100),
  host: z.strictObject({
    totalMiB: mib,
    /** Memory Xen keeps for itself (never in any domain, never free). */
    xenMiB: mib.default(256),
  }),
  /** A start must be admitted within this long, and fails early when the memory being freed
   *  grows by less than 100 MB/s over 3 s (qmemman's rule, anchors §1.8). */
  startTimeoutS: z.number().positive().default(30),
  workloads: z.record(z.string(), WorkloadSchema),
  balloons: z.record(z.string(), BalloonSchema).default({}),
  vms: z.array(VmSchema).min(1),
  /** Extra keys for the xmem config (e.g. per-VM overrides `vms`), merged under --policy. */
  config: z.record(z.string(), z.unknown()).default({}),
}).superRefine((s, ctx) => {
  for (const [i, vm] of s.vms.entries()) {
    if (!(vm.workload in s.workloads)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'workload'], message: `unknown workload ${vm.workload}` });
    if (typeof vm.balloon === 'string' && !(vm.balloon in s.balloons)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'balloon'], message: `unknown balloon ${vm.balloon}` });
    if (vm.memoryMiB > vm.maxMiB) ctx.addIssue({ code: 'custom', path: ['vms', i, 'memoryMiB'], message: 'memoryMiB is above maxMiB' });
  }
  if (s.vms.filter((v) => v.dom0).length !== 1) ctx.addIssue({ code: 'custom', path: ['vms'], message: 'exactly one VM must have "dom0": true' });
});
export type Scenario = z.infer<typeof ScenarioSchema>;

export class ScenarioError extends Error {}

export function parseScenario(raw: unknown, source: string): Scenario {
  const r = ScenarioSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ScenarioError(`${source}: invalid scenario\n${lines.join('\n')}`);
  }
  return r.data;
}

export const SCENARIO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scenarios');

export async function listScenarios(): Promise<string[]> {
  return (await readdir(SCENARIO_DIR)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** Loads a scenario by name (dom0/sim/scenarios/<name>.json) or by file path. */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const file = nameOrPath.includes('/') || nameOrPath.endsWith('.json') ? nameOrPath : path.join(SCENARIO_DIR, `${nameOrPath}.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ScenarioError(`no scenario ${JSON.stringify(nameOrPath)} (known: ${(await listScenarios()).join(', ')})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ScenarioError(`${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  return parseScenario(raw, file);
}
