#!/usr/bin/env node
/**
 * xmem-agent: the guest side of xmem. Reads /proc and the balloon's sysfs, publishes one report
 * to xenstore per real change (see schedule.ts), and keeps going through every transient
 * failure. SIGTERM/SIGINT stop it cleanly.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { realClock } from '../../src/clock.js';
import { encodeGuestReport } from '../../src/schemas/report-wire.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import { Agent } from './agent.js';
import type { HelperSpec } from './helper.js';
import { stderrLine } from './log.js';
import { parseOptions, USAGE, UsageError, type CliOptions } from './options.js';
import { buildReport } from './report.js';
import { BALLOON_CURRENT, ProcSources } from './sources.js';

/** The helper's file name, installed beside the agent (npm run build:agent puts it in dist/). */
export const HELPER_NAME = 'xmem-psi-trigger';

/**
 * The helper's command line: a trigger on the PSI file with the stall threshold as its own,
 * and the meminfo watch at the sampling interval. null with a note when there is none to run.
 */
export function helperSpec(opts: CliOptions, agentFile: string): { spec: HelperSpec | null; note: string | null } {
  if (opts.psiTrigger === null) return { spec: null, note: null };
  const file = opts.psiTrigger ?? path.join(path.dirname(agentFile), HELPER_NAME);
  if (opts.psiTrigger === undefined) {
    try {
      accessSync(file, constants.X_OK);
    } catch {
      return { spec: null, note: `no PSI trigger helper at ${file} (build it with npm run build:agent)` };
    }
  }
  const { config } = opts;
  // The window: 500 ms, the kernel's smallest before Linux 6.4; one event per window at most.
  const windowUs = config.triggerWindowMs * 1000;
  const args = [
    '-p', path.join(opts.procRoot, 'pressure/memory'),
    '-s', String(Math.min(config.stallUs, windowUs)),
    '-w', String(windowUs),
    '-m', path.join(opts.procRoot, 'meminfo'),
    '-i', String(config.intervalMs),
    '-b', path.join(opts.sysRoot, BALLOON_CURRENT),
  ];
  return { spec: { path: file, args, watchesMeminfo: true }, note: null };
}

export async function main(argv: string[]): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`xmem-agent: ${err.message}\n(see xmem-agent --help)\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const sources = new ProcSources(opts.procRoot, opts.sysRoot);
  if (opts.once) {
    const sample = sources.readFull();
    sources.close();
    if (!sample.ok) {
      process.stderr.write(`xmem-agent: ${sample.error}\n`);
      return 1;
    }
    process.stdout.write(`${encodeGuestReport(buildReport(sample.value, 1))}\n`);
    return 0;
  }
  const { spec, note } = helperSpec(opts, fileURLToPath(import.meta.url));
  const agent = new Agent({
    clock: realClock,
    sources,
    config: opts.config,
    helper: spec,
    log: stderrLine,
    connect: () =>
      connectXenstore({
        ...(opts.xenstore === undefined ? {} : { path: opts.xenstore }),
        backoffMs: { initial: 100, max: 5000 },
      }),
  });
  const poll = `meminfo every ${opts.config.intervalMs} ms, stall poll ${opts.config.psiIntervalMs ? `every ${opts.config.psiIntervalMs} ms` : 'off'}`;
  const mode = spec ? `PSI trigger helper ${spec.path} (until it runs: ${poll})` : `${poll}${note ? ` (${note})` : ''}`;
  stderrLine(`started (pid ${process.pid}); ${mode}, heartbeat ${opts.config.heartbeatMs / 1000} s`);
  agent.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stderrLine(`${signal}: stopping`);
      void agent.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

// Run when executed (bin, bundle, tsx), not when imported by a test.
const entry = process.argv[1] ?? '';
if (/(?:xmem-agent(?:\.m?js)?|cli\.[jt]s)$/.test(entry)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`xmem-agent: fatal: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
