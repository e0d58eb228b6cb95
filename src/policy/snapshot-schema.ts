import { z } from 'zod';
import { GuestReportSchema } from '../schemas/report.js';
import type { HostSnapshot } from './types.js';

/**
 * The documented JSON form of a HostSnapshot (src/policy/types.ts): what `xmem plan` reads
 * on stdin and what test fixtures are written in. All memory values are integer KiB of Xen
 * allocation; times are ms. Example (one VM, everything optional left out):
 *
 *   { "nowMs": 0, "totalKib": 16777216, "freeKib": 4194304,
 *     "vms": [ { "domid": 1, "name": "work", "actualKib": 2097152, "staticMaxKib": 4194304,
 *                "signal": { "kind": "qubes", "usedKib": 800000, "ageMs": 0 } } ] }
 *
 * Optional with defaults: reservations [], targetKib null, maxmemKib actualKib + 1024,
 * paused/dying/stuck false, signal {kind:"none"}, override null, history empty; a "xapi" signal's
 * allocKib (the allocation its MemTotal was read at) null, which measures the gap at actualKib.
 * Unknown keys are refused, so a misspelt key is an error rather than silently ignored.
 */
const kib = z.number().int().min(0).max(2 ** 42);
const msTime = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const GuestSignalSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('xmem'), report: GuestReportSchema, ageMs: msTime }),
  z.strictObject({ kind: z.literal('qubes'), usedKib: kib, ageMs: msTime }),
  z.strictObject({ kind: z.literal('xapi'), freeKib: kib, totalKib: kib, allocKib: kib.nullable().default(null), ageMs: msTime }),
  z.strictObject({ kind: z.literal('none'), why: z.string().max(200) }),
]);

export const VmOverrideSchema = z.strictObject({
  minKib: kib.optional(),
  maxKib: kib.optional(),
  weight: z.number().positive().max(1000).optional(),
  pinKib: kib.optional(),
});

export const VmHistorySchema = z.strictObject({
  lastTargetKib: kib.nullable().default(null),
  lastPressureMs: msTime.nullable().default(null),
  lastShrinkMs: msTime.nullable().default(null),
  lastStallTotalUs: msTime.nullable().default(null),
  wantKib: kib.nullable().optional(),
  probeKib: kib.optional(),
  lastProbeMs: msTime.nullable().optional(),
  lastIdealKib: kib.nullable().optional(),
  lastRiseMs: msTime.nullable().optional(),
});

export const VmSnapshotSchema = z
  .strictObject({
    domid: z.number().int().min(0).max(0x7fef),
    name: z.string().min(1).max(128),
    actualKib: kib,
    targetKib: kib.nullable().default(null),
    maxmemKib: kib.optional(),
    staticMaxKib: kib,
    paused: z.boolean().default(false),
    dying: z.boolean().default(false),
    stuck: z.boolean().default(false),
    signal: GuestSignalSchema.default({ kind: 'none', why: 'no signal in snapshot' }),
    override: VmOverrideSchema.nullable().default(null),
    history: VmHistorySchema.prefault({}),
  })
  .transform((v) => ({ ...v, maxmemKib: v.maxmemKib ?? v.actualKib + 1024 }));

export const ReservationSchema = z.strictObject({
  id: z.string().min(1).max(128),
  forName: z.string().max(128),
  kib,
});

export const HostSnapshotSchema = z
  .strictObject({
    nowMs: msTime,
    totalKib: kib,
    freeKib: kib,
    reservations: z.array(ReservationSchema).max(10_000).default([]),
    vms: z.array(VmSnapshotSchema).max(100_000),
  })
  .superRefine((s, ctx) => {
    const seen = new Set<number>();
    s.vms.forEach((vm, i) => {
      if (seen.has(vm.domid)) ctx.addIssue({ code: 'custom', path: ['vms', i, 'domid'], message: `domid ${vm.domid} appears twice` });
      seen.add(vm.domid);
    });
  });

// Compile-time check: the schema's output is a HostSnapshot.
const _check: (s: z.output<typeof HostSnapshotSchema>) => HostSnapshot = (s) => s;
void _check;

/** Every issue as "path: message", one per line. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `  ${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('\n');
}
