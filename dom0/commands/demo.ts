import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { checkPolicy, defaultSimSocket, startLiveSim } from '../sim/live.js';
import { loadScenario } from '../sim/scenario.js';
import { renderResults } from '../sim/summary.js';
import { renderPlainTable } from '../sim/table.js';

export const summary = 'the out-of-the-box demo: a simulated Qubes laptop balanced live (no Xen needed)';

const USAGE = `usage: xmem demo [--policy P] [--speed X] [--socket PATH]

Runs the qubes-laptop scenario (dom0 + 9 qubes on 16 GiB: browser bursts, a build, idle
qubes, qubes starting and shutting down) in real time with the real balancer, and shows it
with xmem top when run in a terminal (a plain table otherwise). q quits.

  --policy P     xmem (default), qmemman, squeezed or static
  --speed X      X times real time (default 1)
  --socket PATH  also serve the state stream here (default $XMEM_STATE_SOCKET, else
                 /tmp/xmem-sim-<uid>/state.sock), so a second terminal can run xmem top
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        policy: { type: 'string', default: 'xmem' },
        speed: { type: 'string', default: '1' },
        socket: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`xmem demo: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const policyError = checkPolicy(values.policy);
  const speed = Number(values.speed);
  if (policyError || !(speed > 0)) {
    process.stderr.write(`xmem demo: ${policyError ?? `--speed must be a positive number, got '${values.speed}'`}\n`);
    return 2;
  }
  const scenario = await loadScenario('qubes-laptop');
  const socketPath = values.socket ?? defaultSimSocket();
  const tty = process.stdin.isTTY && process.stdout.isTTY;
  // The terminal belongs to the live view: the balancer's own log is silenced (warnings in a pipe).
  const logger = pino({ level: tty ? 'silent' : 'warn' }, pino.destination(2));
  const run = await startLiveSim({ scenario, policy: values.policy, speed, socketPath, logger });

  const topApp = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'top', `app${path.extname(fileURLToPath(import.meta.url))}`);
  if (tty && existsSync(topApp)) {
    const { runTop } = (await import(topApp)) as typeof import('../top/app.js');
    const quit = runTop({ socketPath }, { input: process.stdin, output: process.stdout });
    await Promise.race([quit, run.finished]);
    const results = run.rig.sim.results();
    await run.stop();
    process.stdout.write(renderResults(results, values.policy) + '\n');
    return 0;
  }

  process.stdout.write(`xmem demo: ${scenario.name} with policy ${values.policy} at ${speed}x; state stream on ${socketPath}\n`);
  const table = setInterval(() => process.stdout.write(renderPlainTable(run.rig.sim, values.policy) + '\n\n'), 5000);
  const interrupted = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await Promise.race([run.finished, interrupted]);
  clearInterval(table);
  const results = run.rig.sim.results();
  await run.stop();
  process.stdout.write(renderResults(results, values.policy) + '\n');
  return 0;
}
