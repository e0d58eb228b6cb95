import { parseArgs } from 'node:util';
import type { AgentConfig } from './agent.js';
import { DEFAULT_SCHEDULE } from './schedule.js';

export interface CliOptions {
  help: boolean;
  once: boolean;
  procRoot: string;
  sysRoot: string;
  /** Socket or xenbus device; undefined = the client's default (XENSTORED_PATH, socket, /dev/xen/xenbus). */
  xenstore: string | undefined;
  /** The native PSI-trigger helper: a path, null for off, undefined for the default (beside the agent). */
  psiTrigger: string | null | undefined;
  config: AgentConfig;
}

export const USAGE = `usage: xmem-agent [options]

Publishes this guest's meminfo, memory pressure (PSI) and balloon size to xenstore
(data/xmem, and Qubes' memory/meminfo where dom0 made it writable) for the xmem manager.

  --once                 print the report it would send (JSON) and exit
  --interval <dur>       meminfo sampling period (default 1s; bare number = ms)
  --psi-trigger <path>   native helper that waits for PSI trigger events and watches
                         meminfo, so the agent need not poll (default: xmem-psi-trigger
                         beside this file, if there); "off" = always poll
  --psi-interval <dur>   stall poll period, the fast path without the helper (default
                         150ms; 0 = off: then it wakes only for meminfo, computed PSI
                         decay, heartbeat)
  --threshold <KiB>      change worth a report, meminfo-writer's (default 30000;
                         halved for growth above ~77% utilisation)
  --grow-threshold <KiB> demand growth worth a report: MemAvailable falling or
                         Committed_AS rising (default 8192; at most --threshold)
  --max-rate <n>         at most n writes per second (default 10)
  --stall-us <us>        PSI stall growth that triggers a report (default 1: any)
  --psi-calm <pct>       PSI average under which pressure is over (default 0.1)
  --heartbeat <dur>      report at least this often (default 60s; bare number = s)
  --no-qubes             never write memory/meminfo
  --xenstore <path>      xenstore socket or xenbus device (default: $XENSTORED_PATH,
                         the xenstored socket, else /dev/xen/xenbus)
  --proc-root <dir>      read meminfo, vmstat, uptime, pressure/memory here (default /proc)
  --sys-root <dir>       read devices/system/xen_memory here (default /sys)
  -h, --help             this text

Durations take a unit: 250ms, 2s, 5m. Logs go to stderr, one line per change of state.`;

/** A user error in the command line: the CLI prints it and exits 2. */
export class UsageError extends Error {}

const DUR = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$/;

/** "250ms", "2s", "5m", or a bare number in `bareUnit`. */
export function parseDuration(flag: string, text: string, bareUnit: 'ms' | 's'): number {
  const m = DUR.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: not a duration: ${JSON.stringify(text)} (use e.g. 250ms, 2s, 5m)`);
  const unit = m[2] ?? bareUnit;
  return Math.round(Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[unit as 'ms' | 's' | 'm']);
}

function parseNumber(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag}: expected a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

function inRange(flag: string, ms: number, min: number, max: number): number {
  if (ms < min || ms > max) throw new UsageError(`${flag}: must be between ${min} ms and ${max} ms`);
  return ms;
}

function parseTrigger(text: string | undefined): string | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'off') return null;
  if (text.trim() === '') throw new UsageError('--psi-trigger: expected a path or "off"');
  return text;
}

export function parseOptions(argv: string[]): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        once: { type: 'boolean' },
        interval: { type: 'string' },
        'psi-interval': { type: 'string' },
        'psi-trigger': { type: 'string' },
        threshold: { type: 'string' },
        'grow-threshold': { type: 'string' },
        'max-rate': { type: 'string' },
        'stall-us': { type: 'string' },
        'psi-calm': { type: 'string' },
        heartbeat: { type: 'string' },
        'no-qubes': { type: 'boolean' },
        xenstore: { type: 'string' },
        'proc-root': { type: 'string' },
        'sys-root': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const d = DEFAULT_SCHEDULE;
  const v = values;
  const psiInterval = v['psi-interval'] === undefined ? d.psiIntervalMs : parseDuration('--psi-interval', v['psi-interval'], 'ms');
  const config: AgentConfig = {
    intervalMs: v.interval === undefined ? d.intervalMs : inRange('--interval', parseDuration('--interval', v.interval, 'ms'), 10, 3_600_000),
    psiIntervalMs: psiInterval === 0 ? 0 : inRange('--psi-interval', psiInterval, 10, 60_000),
    thresholdKib: v.threshold === undefined ? d.thresholdKib : parseNumber('--threshold', v.threshold, 0, 2 ** 32),
    growThresholdKib: v['grow-threshold'] === undefined ? d.growThresholdKib : parseNumber('--grow-threshold', v['grow-threshold'], 0, 2 ** 32),
    minGapMs: v['max-rate'] === undefined ? d.minGapMs : Math.ceil(1000 / parseNumber('--max-rate', v['max-rate'], 0.001, 1000)),
    stallGapMs: d.stallGapMs,
    heartbeatMs: v.heartbeat === undefined ? d.heartbeatMs : inRange('--heartbeat', parseDuration('--heartbeat', v.heartbeat, 's'), 1000, 86_400_000),
    stallUs: v['stall-us'] === undefined ? d.stallUs : parseNumber('--stall-us', v['stall-us'], 1, 1e9),
    psiCalm: v['psi-calm'] === undefined ? d.psiCalm : parseNumber('--psi-calm', v['psi-calm'], 0.01, 100),
    safetyMs: d.safetyMs,
    triggerWindowMs: d.triggerWindowMs,
    qubes: !v['no-qubes'],
    backoffMinMs: 200,
    backoffMaxMs: 30_000,
    writeTimeoutMs: 5000,
  };
  return {
    help: !!v.help,
    once: !!v.once,
    procRoot: v['proc-root'] ?? '/proc',
    sysRoot: v['sys-root'] ?? '/sys',
    xenstore: v.xenstore,
    psiTrigger: parseTrigger(v['psi-trigger']),
    config,
  };
}
