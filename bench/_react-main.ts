/**
 * Entry of the react benchmark's child process (bench/policy.ts bundles it with esbuild and
 * runs it under plain node, as the dom0 service runs: no tsx loader thread in the measured
 * process). Prints one JSON line: ReactResult[] (quiet host, then busy host).
 *
 * One manager is measured for its whole life: first `--warmup-passes` samples (default 1500)
 * at the busy pace to reach V8's steady state (see ReactOptions.warmupSamples), then the quiet
 * host's samples, then the busy host's. `--warmup-passes 0` measures the early life of a service.
 */
import { measureReactLatency } from './_react.js';

const arg = (name: string): number | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const quiet = arg('quiet-samples') ?? 600;
const busy = arg('busy-samples') ?? 1000;
const results = await measureReactLatency(arg('n') ?? 100, {
  warmupSamples: arg('warmup-passes') ?? 1500,
  patterns: [
    // A report every ~105 ms: each pass starts on cold caches and idle CPUs.
    { label: `quiet host, report every ~105 ms, ${quiet} samples`, samples: quiet, spacingMs: 105 },
    // Every ~25 ms: 1000 samples, so p99 is the 10th-worst sample, not the 2nd.
    { label: `busy host, report every ~25 ms, ${busy} samples`, samples: busy, spacingMs: 25 },
  ],
});
process.stdout.write(`${JSON.stringify(results)}\n`);
