/**
 * Entry of the react benchmark's child process (bench/policy.ts bundles it with esbuild and
 * runs it under plain node, as the dom0 service runs: no tsx loader thread in the measured
 * process). Prints one JSON line: ReactResult.
 *
 * Steady state is what a service that runs for weeks sees: V8 optimizes a function called once
 * per pass only after hundreds of calls (`--trace-opt` still shows compiles a thousand passes in, and
 * each compile's helper thread competes with the pass for a vCPU). So the process first runs
 * `--warmup-passes` samples (default 1500) on a throw-away daemon and manager, at the busy pace;
 * the measured run then starts on code V8 has mostly finished optimizing. `--warmup-passes 0` measures the
 * early life of a service instead.
 */
import { measureReactLatency } from './_react.js';

const arg = (name: string): number | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const samples = arg('samples');
const spacing = arg('min-pass-interval-ms');
const n = arg('n') ?? 100;
const warmupPasses = arg('warmup-passes') ?? 1500;
if (warmupPasses > 0) await measureReactLatency(n, { samples: warmupPasses, warmup: 0, minPassIntervalMs: 20 });
const result = await measureReactLatency(n, {
  ...(samples !== undefined ? { samples } : {}),
  ...(spacing !== undefined ? { minPassIntervalMs: spacing } : {}),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
