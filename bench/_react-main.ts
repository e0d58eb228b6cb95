/**
 * Entry of the react benchmark's processes (bench/policy.ts bundles it with esbuild and runs it
 * under plain node, as the dom0 service runs: no tsx loader thread in a measured process).
 *
 * Without `--role` it is the driver: it forks itself twice, as the manager (`--role manager`)
 * and as the bare reactor (`--role bare`), measures both (bench/_react.ts) and prints one JSON
 * line: ReactResult[] (quiet host, then busy host).
 *
 * One manager is measured for its whole life: first `--warmup-passes` samples (default 1500)
 * at the busy pace to reach V8's steady state (see ReactOptions.warmupSamples), then the quiet
 * host's samples, then the busy host's. `--warmup-passes 0` measures the early life of a service.
 */
import { fileURLToPath } from 'node:url';
import { measureReactLatency } from './_react.js';
import { runBareChild, runManagerChild, type ManagerChildSpec } from './_react-peers.js';

const str = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const num = (name: string): number | undefined => {
  const v = str(name);
  return v === undefined ? undefined : Number(v);
};

const role = str('role');
if (role === 'manager') {
  await runManagerChild(JSON.parse(str('spec')!) as ManagerChildSpec);
} else if (role === 'bare') {
  await runBareChild(str('socket')!);
} else {
  const quiet = num('quiet-samples') ?? 600;
  const busy = num('busy-samples') ?? 1000;
  const results = await measureReactLatency(num('n') ?? 100, {
    childScript: fileURLToPath(import.meta.url),
    nativeReactor: str('native'),
    floorDriver: str('floor-driver'),
    gcBetweenPasses: str('gc-between-passes') !== '0',
    fifo: str('fifo') === '1',
    warmupSamples: num('warmup-passes') ?? 1500,
    patterns: [
      // A report every ~105 ms: each pass starts on cold caches and idle CPUs.
      { label: `quiet host, report every ~105 ms, ${quiet} samples`, samples: quiet, spacingMs: 105 },
      // Every ~25 ms: 1000 samples, so p99 is the 10th-worst sample, not the 2nd.
      { label: `busy host, report every ~25 ms, ${busy} samples`, samples: busy, spacingMs: 25 },
    ],
  });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}
