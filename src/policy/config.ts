import { z } from 'zod';
import { MIB, parseSizeKib } from '../units.js';
import { parseQubesSize } from './qubes-size.js';

/**
 * The policy's configuration: every key optional, every default documented here and in the
 * README's config reference. Sizes are either a JSON number of KiB (xmem's unit) or a string
 * with a unit ("512M", "1.5G", "200MiB"; a string without a unit is bytes, as in
 * qmemman.conf). After parsing, every size is an integer number of KiB.
 *
 * Unknown keys are refused (strict objects), so a typo is reported with its path instead of
 * being silently ignored.
 */

export const POLICIES = ['xmem', 'qmemman', 'squeezed', 'static'] as const;
export type PolicyName = (typeof POLICIES)[number];

/** A size: KiB as a number, or a string with a unit (no unit = bytes). Output: KiB. */
export const SizeSchema = z.union([
  z.number().int().min(0).max(2 ** 42),
  z.string().transform((s, ctx) => {
    try {
      const kib = parseSizeKib(s);
      if (kib > 2 ** 42) throw new Error(`size too large: ${JSON.stringify(s)}`);
      return kib;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  }),
]);

const ms = (max: number) => z.number().int().min(0).max(max);
const fraction = z.number().min(0).max(1);
const pct = z.number().min(0).max(100);

export const Dom0Schema = z.strictObject({
  /** dom0 is never taken below this (Qubes boots it with dom0_mem=min:1024M). */
  floor: SizeSchema.default(1024 * MIB),
  /** Added to dom0's ideal: dom0 serves every VM's disk and network I/O from its page cache
   *  (qmemman's DOM0_MEM_BOOST). */
  boost: SizeSchema.default(350 * MIB),
  /** dom0's weight in scarcity and proportional surplus sharing. */
  weight: z.number().positive().max(1000).default(1),
});

export const PressureSchema = z.strictObject({
  /** A VM is under pressure when its PSI memory `some` avg10 reaches this (percent)… */
  growAvg10Pct: pct.default(1),
  /** …or when its `some` stall total grew by this much since the last report seen (µs;
   *  senpai's 10 ms per interval). Also the unit of senpai's error ratio below. */
  stallUs: z.number().int().min(1).default(10_000),
  /** Growth per pressured pass = base × min(growMaxFraction, (err / coeffBackoff)²), with
   *  err = max(stall/stallUs, avg10/growAvg10Pct): senpai's backoff law. */
  coeffBackoff: z.number().positive().default(20),
  growMaxFraction: z.number().positive().max(4).default(1),
  /** …but never less than this per pressured pass, so a stall always buys real memory. */
  growMin: SizeSchema.default(64 * MIB),
  /** Memory given for pressure is taken back only once max(avg10, avg60) is below this
   *  (percent; oomd Senpai's pressure_pct)… */
  calmPct: pct.default(0.1),
  /** A high avg10 alone (no fresh stall in a new report) grows a VM at most this often: the
   *  average lags, and passes can come every 100 ms. */
  growIntervalMs: ms(3_600_000).default(2_000),
  /** …and at least this long after the last pressured pass. */
  holdMs: ms(3_600_000).default(30_000),
  /** Under scarcity, a VM under pressure (or within holdMs of it) shares with its weight
   *  multiplied by this, so memory comes from calm VMs first. */
  scarcityWeight: z.number().min(1).max(100).default(4),
  /** Past this long after the last pressure, shrinking no longer waits for PSI to decay (a
   *  guest with a steady low stall would otherwise keep its extra memory for ever). */
  decayMaxMs: ms(86_400_000).default(300_000),
});

export const ShrinkSchema = z.strictObject({
  /** At most one shrink step of a VM's demand per this interval (ms). */
  intervalMs: ms(3_600_000).default(2_000),
  /** A step takes at most this fraction of the VM's current demand… */
  stepFraction: fraction.default(0.1),
  /** …or this much, whichever is larger. */
  stepMin: SizeSchema.default(64 * MIB),
  /** No shrink step while the VM's ideal rose by `riseMin` or more within this long (ms): its
   *  working set is growing, and a step taken now would be given back (the lab saw a VM cut
   *  by 555 MiB while a workload raised its floor by 184 MiB). */
  riseHoldMs: ms(3_600_000).default(5_000),
  riseMin: SizeSchema.default(4 * MIB),
});

export const ProbeSchema = z.strictObject({
  /** Senpai-style probing: a VM calm for a while is offered slightly less than its ideal,
   *  step by step, down to its floor, as long as its PSI stays calm (xmem reports with PSI only). */
  enabled: z.boolean().default(true),
  /** Fraction of the demand probed away per step (senpai's max_probe). */
  fraction: fraction.default(0.01),
  /** One step per this interval (senpai: 6 ticks of 1 s). */
  intervalMs: ms(3_600_000).default(6_000),
  /** Probing starts only this long after the last pressure. */
  calmForMs: ms(86_400_000).default(60_000),
});

export const HysteresisSchema = z.strictObject({
  /** A pass changes nothing unless the targets move by more than this in total
   *  (qmemman's MIN_TOTAL_MEMORY_TRANSFER)… 0 disables. */
  total: SizeSchema.default(150 * MIB),
  /** …or some VM under pressure or below its floor moves by more than this
   *  (qmemman's MIN_MEM_CHANGE_WHEN_UNDER_PREF). */
  urgent: SizeSchema.default(15 * MIB),
});

/** A qmemman.conf size, parsed exactly as Qubes' parse_size does (see qmemman-conf.ts):
 *  a number or digit string is bytes, K/M/G are DECIMAL (200M = 200 000 000 bytes),
 *  Ki/Mi/Gi binary. Output: bytes (qmemman computes in bytes). */
export const QubesSizeSchema = z.union([
  z.number().int().min(0).max(2 ** 52),
  z.string().transform((s, ctx) => {
    const bytes = parseQubesSize(s);
    if (bytes === null) {
      ctx.addIssue({ code: 'custom', message: `not a qmemman size: ${JSON.stringify(s)} (e.g. 200M, 200MiB, 209715200)` });
      return z.NEVER;
    }
    return bytes;
  }),
]);

export const QmemmanKeysSchema = z.strictObject({
  /** qmemman.conf `vm-min-mem`: MIN_PREFMEM, the smallest pref of a domU (bytes). */
  'vm-min-mem': QubesSizeSchema.default(200 * 1024 * 1024),
  /** qmemman.conf `dom0-mem-boost`: DOM0_MEM_BOOST (bytes). */
  'dom0-mem-boost': QubesSizeSchema.default(350 * 1024 * 1024),
  /** qmemman.conf `cache-margin-factor`: CACHE_FACTOR, pref = factor × used. */
  'cache-margin-factor': z.number().positive().max(100).default(1.3),
});

export const SqueezedSchema = z.strictObject({
  /** dynamic-min = max(vmMin, ratio × static-max) unless the VM's `min` override is set
   *  (xapi's memory-ratio-hvm/pv = 0.25). dynamic-max = the VM's ceiling. */
  dynamicMinRatio: fraction.default(0.25),
});

export const PolicyConfigSchema = z.strictObject({
  /** Which algorithm decides: xmem (guest signal + PSI), qmemman (Qubes' algo.py, exactly),
   *  squeezed (same fraction between dynamic-min and dynamic-max, no guest signal), static
   *  (hold every VM where it is; only pins are applied). */
  policy: z.enum(POLICIES).default('xmem'),
  /** Where memory left over once every VM has its ideal goes: `free` (stays free in Xen: a
   *  burst or a VM start is served at once, without squeezing anyone first), `proportional`
   *  (shared by weight × ideal, like qmemman), or `dom0` (to dom0 up to its ceiling). In the
   *  simulator `free` beat `proportional` on the laptop scenario on every measure (stall,
   *  idle memory, start latency); `proportional` stalls less on a crowded server. */
  surplus: z.enum(['proportional', 'dom0', 'free']).default('free'),
  /** With `proportional` or `dom0`: this much of the surplus stays free anyway. */
  surplusKeepFree: SizeSchema.default(0),
  /** Ideal = max(Committed_AS, unreclaimable) + cache allowance + gap. The allowance is
   *  max(cacheMin, cacheFraction × Committed_AS, Active(file) if cacheUsesActiveFile),
   *  at most cacheMax. */
  cacheFraction: z.number().min(0).max(10).default(0.15),
  cacheMin: SizeSchema.default(64 * MIB),
  cacheMax: SizeSchema.default(1024 * MIB),
  cacheUsesActiveFile: z.boolean().default(true),
  /** Floor = unreclaimable memory (MemTotal − MemFree − file LRU − SReclaimable) + this
   *  headroom + gap (oomd Senpai: 100 MiB + unreclaimable). */
  floorHeadroom: SizeSchema.default(100 * MIB),
  /** The guest's hot page cache (Active(file), at most cacheMax) replaces the headroom in the
   *  floor when larger: evicting a working set makes a guest refault and stall. */
  floorUsesActiveFile: z.boolean().default(true),
  /** Default per-VM minimum (a VM's `min` override replaces it); floors never go below. */
  vmMin: SizeSchema.default(200 * MIB),
  /** Xen allocation − guest MemTotal (kernel, memmap, firmware) is added to ideal and floor;
   *  this bounds what a guest can claim that way. */
  gapMax: SizeSchema.default(256 * MIB),
  /** Weight of a VM without a `weight` override. */
  defaultWeight: z.number().positive().max(1000).default(1),
  dom0: Dom0Schema.prefault({}),
  pressure: PressureSchema.prefault({}),
  shrink: ShrinkSchema.prefault({}),
  probe: ProbeSchema.prefault({}),
  hysteresis: HysteresisSchema.prefault({}),
  /** An xmem report older than this (ms) is no signal (the manager usually says so first).
   *  2.5 of the agent's 60 s heartbeats: a quiet guest is never taken for a dead one. */
  staleReportMs: z.number().int().min(100).max(86_400_000).default(150_000),
  /** A VM without a valid signal (no agent, bad or stale report): `hold` keeps exactly the
   *  target in force (or its allocation), a size sets that fixed target (never below the
   *  VM's min). Either way it is never squeezed. */
  noSignalTarget: z.union([z.literal('hold'), SizeSchema]).default('hold'),
  /** Xen memory never handed out by balancing (Xen's low_mem_virq_limit is 64 MiB). */
  hostFreeReserve: SizeSchema.refine((k) => k >= 64 * MIB, 'must be at least 64M').default(64 * MIB),
  /** qmemman.conf's keys (same names, same units and size syntax as qmemman.conf), used by
   *  `policy: qmemman`; the service can load them from a qmemman.conf (`qmemmanConf`). */
  qmemman: QmemmanKeysSchema.prefault({}),
  squeezed: SqueezedSchema.prefault({}),
});

export type PolicyConfig = z.output<typeof PolicyConfigSchema>;
export type PolicyConfigInput = z.input<typeof PolicyConfigSchema>;

/** The defaults, fully parsed. */
export function defaultPolicyConfig(): PolicyConfig {
  return PolicyConfigSchema.parse({});
}
