import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { PolicyConfigSchema, type PolicyConfig } from '../src/policy/config.js';
import { parseQmemmanConf, type QmemmanConfKeys } from '../src/policy/qmemman-conf.js';
import type { VmOverride } from '../src/policy/types.js';
import { MIB, parseSizeKib } from '../src/units.js';
import { LOG_LEVELS } from './log.js';

/**
 * The dom0 service's config file (JSON), e.g. /etc/xmem/config.json. The policy's keys
 * (PolicyConfigSchema, src/policy/config.ts: staleReportMs, hostFreeReserve, …) sit at the top
 * level; the manager uses two of them too (staleness, the Xen free-memory reserve).
 *
 *
 *   { "policy": "xmem", …other policy keys (src/policy/config.ts)…,
 *     "qmemmanConf": "/etc/qubes/qmemman.conf",     // only with "policy": "qmemman"
 *     "service": { "sweepIntervalMs": 10000, … },    // ServiceSchema below
 *     "vms": { "work": { "min": "1G", "max": "8G", "weight": 2 }, "sys-net": { "pin": "400M" } } }
 *
 * Everything is optional. Sizes are strings with a unit ("512M", "2G"; no unit = bytes, as in
 * qmemman.conf) or plain numbers of KiB (xmem's unit). A bad file is refused with every
 * offending path named; `xmem run` exits 2 on it.
 */

const size = z.union([
  z.number().int().min(0).max(2 ** 42),
  z.string().transform((s, ctx) => {
    try {
      return parseSizeKib(s);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  }),
]);

export const ServiceSchema = z.strictObject({
  /** xenstored socket or /dev/xen/xenbus; default: XENSTORED_PATH, else the standard socket. */
  xenstorePath: z.string().min(1).optional(),
  /** Unix socket of the state stream (`xmem top`, `xmem status`, /metrics); default
   *  $XMEM_STATE_SOCKET, else /run/xmem/state.sock. */
  stateSocket: z.string().min(1).optional(),
  /** Group allowed to watch the state socket (0660), e.g. Qubes' `qubes`; default root only (0600). */
  stateGroup: z.union([z.string().min(1), z.number().int().min(0)]).optional(),
  /** Also serve the state stream and /metrics on 127.0.0.1:<port> (for a Prometheus server). */
  metricsPort: z.number().int().min(1).max(65535).optional(),
  /** xmem's VM-start admission socket (`xmem reserve`/`release`); null disables it. */
  admissionSocket: z.string().min(1).nullable().default('/run/xmem/admission.sock'),
  /** A qmemman.sock-compatible socket for qubesd (Qubes: /var/run/qubes/qmemman.sock); null: none. */
  qmemmanSocket: z.string().min(1).nullable().default(null),
  /** Group allowed to use the admission sockets (0660); default root only (0600). */
  admissionGroup: z.union([z.string().min(1), z.number().int().min(0)]).optional(),
  /** A held reservation expires after this if the VM never starts. */
  reservationTimeoutMs: z.number().int().min(1000).max(3_600_000).default(120_000),
  /** How xmem talks to Xen: "xc" = the long-lived xmem-xc helper (libxenctrl, no fork per
   *  pass), "xl" = fork xl (one `xl list` per pass), "auto" = xc when the helper starts, else xl. */
  xenControl: z.enum(['auto', 'xc', 'xl']).default('auto'),
  /** The xmem-xc helper; default: dom0/native/xmem-xc beside the installed service. */
  xcHelperPath: z.string().min(1).optional(),
  xlPath: z.string().min(1).default('xl'),
  /** How often `xl info` recalibrates total/free memory (each xl fork is expensive). */
  xlInfoEveryMs: z.number().int().min(1000).default(60_000),
  /** Slow periodic sweep: every VM is re-read and rebalanced even if no guest wrote. */
  sweepIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
  /** Passes start at least this far apart; a burst of events in between makes one pass. */
  minPassIntervalMs: z.number().int().min(0).max(60_000).default(100),
  /** While a VM is moving toward its target, look again this often. */
  convergePollMs: z.number().int().min(50).max(60_000).default(1000),
  /** A VM making no progress toward its target for this long is stuck (squeezed: 5 s). */
  stuckAfterMs: z.number().int().min(100).default(5000),
  /** Within this of its target a VM has arrived: xl list reports whole MiB, and HVM guests
   *  settle a video-RAM offset away from memory/target (qmemman allows 12.5-16 MiB too). */
  targetToleranceKib: size.default(16 * MIB),
  /** Bounded wait for shrinks to free memory before grows (free before allocate). */
  growWaitMaxMs: z.number().int().min(0).max(60_000).default(2000),
  growWaitPollMs: z.number().int().min(10).max(10_000).default(100),
  /** Lower Xen's maxmem with every shrink (qmemman; stops a guest keeping what it gave back). */
  lowerMaxmemOnShrink: z.boolean().default(true),
  /** Collect V8's young generation between passes rather than inside them (needs node
   *  --expose-gc, which the systemd unit sets; dom0/manager/gc-between-passes.ts). */
  gcBetweenPasses: z.boolean().default(true),
  /** The manager's main thread at SCHED_FIFO with this priority, 0 = off (ordinary
   *  scheduling). Cuts the react p99 on a small dom0; dom0/manager/realtime.ts. */
  fifoPriority: z.number().int().min(0).max(99).default(0),
  logLevel: z.enum(LOG_LEVELS).default('info'),
});
export type ServiceConfig = z.infer<typeof ServiceSchema>;

const VmOverrideSchema = z.strictObject({
  min: size.optional(),
  max: size.optional(),
  weight: z.number().positive().max(1000).optional(),
  /** Fixed size: xmem never changes this VM. */
  pin: size.optional(),
});

const FileSchema = z.looseObject({
  qmemmanConf: z.string().min(1).optional(),
  service: ServiceSchema.default(() => ServiceSchema.parse({})),
  vms: z.record(z.string().min(1).max(128), VmOverrideSchema).default({}),
});

export interface XmemConfig {
  policy: PolicyConfig;
  service: ServiceConfig;
  /** Per-VM overrides by VM name, in KiB. */
  vms: Record<string, VmOverride>;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** One line per problem, each naming the full path of the offending key. */
function describe(issues: readonly z.core.$ZodIssue[], prefix: string): string {
  const lines: string[] = [];
  const where = (p: readonly PropertyKey[]) => [prefix, ...p.map(String)].filter(Boolean).join('.') || '(root)';
  for (const i of issues) {
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys) lines.push(`  ${where([...i.path, k])}: unknown key`);
    } else if (i.code === 'invalid_union') {
      // A size is "number of KiB | string with a unit": say what was wrong with the string.
      const inner = i.errors.flat().find((e) => e.code === 'custom') ?? i.errors.flat()[0];
      lines.push(`  ${where([...i.path, ...(inner?.path ?? [])])}: ${inner?.message ?? i.message}`);
    } else {
      lines.push(`  ${where(i.path)}: ${i.message}`);
    }
  }
  return lines.join('\n');
}

/**
 * Validates a parsed config object. `qmemmanText` is the content of the qmemman.conf the file
 * points to (loadConfig reads it). Throws ConfigError naming every offending path.
 */
export function parseConfig(raw: unknown, source = 'config', qmemmanText?: string): XmemConfig {
  const file = FileSchema.safeParse(raw ?? {});
  if (!file.success) throw new ConfigError(`${source}: invalid\n${describe(file.error.issues, '')}`);
  const { qmemmanConf, service, vms, ...policyKeys } = file.data;
  let policyInput: Record<string, unknown> = policyKeys;
  if (qmemmanConf !== undefined) {
    if (policyKeys.policy !== 'qmemman') {
      throw new ConfigError(`${source}: invalid\n  qmemmanConf: only allowed with "policy": "qmemman"`);
    }
    if (qmemmanText !== undefined) {
      // Keys written in the JSON file win over the same keys in qmemman.conf.
      const fromConf = qmemmanPolicyKeys(qmemmanText, qmemmanConf);
      const own = (policyKeys.qmemman ?? {}) as Record<string, unknown>;
      policyInput = { ...policyKeys, qmemman: { ...fromConf.qmemman, ...own } };
    }
  }
  const policy = PolicyConfigSchema.safeParse(policyInput);
  if (!policy.success) throw new ConfigError(`${source}: invalid\n${describe(policy.error.issues, '')}`);
  const overrides: Record<string, VmOverride> = {};
  for (const [name, o] of Object.entries(vms)) {
    if (o.min !== undefined && o.max !== undefined && o.min > o.max) {
      throw new ConfigError(`${source}: invalid\n  vms.${name}: min (${o.min} KiB) is above max (${o.max} KiB)`);
    }
    overrides[name] = {
      ...(o.min !== undefined ? { minKib: o.min } : {}),
      ...(o.max !== undefined ? { maxKib: o.max } : {}),
      ...(o.weight !== undefined ? { weight: o.weight } : {}),
      ...(o.pin !== undefined ? { pinKib: o.pin } : {}),
    };
  }
  return { policy: policy.data, service, vms: overrides };
}

/** Reads and validates a config file (and the qmemman.conf it names). Throws ConfigError. */
export async function loadConfig(file: string): Promise<XmemConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const conf = (raw as { qmemmanConf?: unknown } | null)?.qmemmanConf;
  let qmemmanText: string | undefined;
  if (typeof conf === 'string' && conf.length > 0) {
    const confPath = path.resolve(path.dirname(file), conf);
    try {
      qmemmanText = await readFile(confPath, 'utf8');
    } catch (err) {
      throw new ConfigError(`${file}: qmemmanConf ${confPath}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  return parseConfig(raw, file, qmemmanText);
}

/** The defaults, as `xmem run` uses them without --config. */
export function defaultConfig(): XmemConfig {
  return parseConfig({});
}

/** POLICY owns the qmemman.conf parser; errors are re-labelled with the file's path. */
function qmemmanPolicyKeys(text: string, where: string): QmemmanConfKeys {
  try {
    return parseQmemmanConf(text);
  } catch (err) {
    throw new ConfigError(`qmemmanConf ${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
