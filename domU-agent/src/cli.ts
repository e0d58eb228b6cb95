#!/usr/bin/env node
/**
 * xmem-agent: the guest side of xmem. Reads /proc and the balloon's sysfs, publishes one report
 * to xenstore per real change (see schedule.ts), and keeps going through every transient
 * failure. SIGTERM/SIGINT stop it cleanly.
 */
import { realClock } from '../../src/clock.js';
import { encodeGuestReport } from '../../src/schemas/report-wire.js';
import { connectXenstore } from '../../src/xenstore/client.js';
import { Agent } from './agent.js';
import { stderrLine } from './log.js';
import { parseOptions, USAGE, UsageError, type CliOptions } from './options.js';
import { buildReport } from './report.js';
import { ProcSources } from './sources.js';

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
  const agent = new Agent({
    clock: realClock,
    sources,
    config: opts.config,
    log: stderrLine,
    connect: () =>
      connectXenstore({
        ...(opts.xenstore === undefined ? {} : { path: opts.xenstore }),
        backoffMs: { initial: 100, max: 5000 },
      }),
  });
  stderrLine(`started (pid ${process.pid}); meminfo every ${opts.config.intervalMs} ms, stall poll ${opts.config.psiIntervalMs ? `every ${opts.config.psiIntervalMs} ms` : 'off'}, heartbeat ${opts.config.heartbeatMs / 1000} s`);
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
