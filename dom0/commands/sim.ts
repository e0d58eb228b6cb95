import { parseArgs } from 'node:util';
import { createLogger } from '../log.js';
import { checkPolicy, defaultSimSocket, startLiveSim } from '../sim/live.js';
import { runScenario } from '../sim/run.js';
import { listScenarios, loadScenario, ScenarioError, type Scenario } from '../sim/scenario.js';
import { renderResults } from '../sim/summary.js';
import { renderPlainTable } from '../sim/table.js';

export const summary = 'run a simulated Xen host (no Xen needed) with the real balancer; watch it with xmem top';

const USAGE = `usage: xmem sim [SCENARIO] [--policy P] [--speed X|max] [--socket PATH] [--every S] [--xenstore P]

  SCENARIO       a scenario name (see --list) or a path to a scenario .json (default qubes-laptop)
  --policy P     xmem (default), qmemman, squeezed or static
  --speed X      run X times faster than real time (default 1)
  --speed max    virtual clock: run the whole scenario as fast as possible and print the results
  --socket PATH  state socket for \`xmem top --socket PATH\` (default $XMEM_STATE_SOCKET, else
                 /tmp/xmem-sim-<uid>/state.sock)
  --every S      print a plain table every S simulated seconds (default 10; 0 = never)
  --xenstore P   use the xenstored listening on socket P (e.g. a private C xenstored) instead of
                 the embedded store; guests then write as dom0. Not with --speed max.
  --list         list the scenarios

Simulated VMs publish real xmem agent reports into an in-process xenstore; the real manager
and policy balance them. Ctrl-C stops the run and prints what happened.
exit codes: 0 done, 1 the run failed, 2 usage error or bad scenario
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        policy: { type: 'string', default: 'xmem' },
        speed: { type: 'string', default: '1' },
        socket: { type: 'string' },
        every: { type: 'string', default: '10' },
        xenstore: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`xmem sim: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.list) {
    for (const name of await listScenarios()) process.stdout.write(`${name}: ${(await loadScenario(name)).description}\n`);
    return 0;
  }
  const usage = (msg: string) => {
    process.stderr.write(`xmem sim: ${msg}\n`);
    return 2;
  };
  if (positionals.length > 1) return usage('at most one scenario');
  const policyError = checkPolicy(values.policy);
  if (policyError) return usage(policyError);
  const speed = values.speed === 'max' ? Infinity : Number(values.speed);
  if (!(speed > 0)) return usage(`--speed must be a positive number or "max", got '${values.speed}'`);
  const every = Number(values.every);
  if (!(every >= 0)) return usage(`--every must be a number of seconds >= 0, got '${values.every}'`);
  let scenario: Scenario;
  try {
    scenario = await loadScenario(positionals[0] ?? 'qubes-laptop');
  } catch (err) {
    if (err instanceof ScenarioError) return usage(err.message);
    throw err;
  }

  if (speed === Infinity && values.xenstore) return usage('--xenstore needs a real-time --speed (a daemon answers in real time)');
  if (speed === Infinity) {
    const r = await runScenario(scenario, values.policy);
    process.stdout.write(renderResults(r, values.policy) + '\n');
    return 0;
  }
  return live(scenario, values.policy, speed, values.socket ?? defaultSimSocket(), every, values.xenstore);
}

async function live(scenario: Scenario, policy: string, speed: number, socketPath: string, everyS: number, xenstorePath?: string): Promise<number> {
  const logger = createLogger('warn', process.stderr as never);
  const run = await startLiveSim({ scenario, policy, speed, socketPath, logger, ...(xenstorePath ? { xenstorePath } : {}) });
  process.stdout.write(`simulating ${scenario.name} (${scenario.durationS} s at ${speed}x) with policy ${policy}\n`
    + `watch it live:  xmem top --socket ${socketPath}\n`);
  const table = everyS > 0 ? setInterval(() => process.stdout.write(renderPlainTable(run.rig.sim, policy) + '\n\n'), (everyS * 1000) / speed) : null;
  const interrupted = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await Promise.race([run.finished, interrupted]);
  if (table) clearInterval(table);
  const results = run.rig.sim.results();
  await run.stop();
  process.stdout.write(renderResults(results, policy) + '\n');
  return 0;
}
