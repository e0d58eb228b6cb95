/**
 * Entry of the react benchmark's child process (bench/policy.ts bundles it with esbuild and
 * runs it under plain node, as the dom0 service runs: no tsx loader thread in the measured
 * process). Prints one JSON line: ReactResult.
 */
import { measureReactLatency } from './_react.js';

const arg = (name: string): number | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const samples = arg('samples');
const spacing = arg('min-pass-interval-ms');
const n = arg('n') ?? 100;
const result = await measureReactLatency(n, {
  ...(samples !== undefined ? { samples } : {}),
  ...(spacing !== undefined ? { minPassIntervalMs: spacing } : {}),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
