import { parseArgs } from 'node:util';
import { fetchState, StateStreamError } from '../state/client.js';
import { stateSocketPath } from '../state/paths.js';
import { renderStatusTable } from '../top/table.js';

export const summary = 'the balancer state once, as a table or --json (for scripts)';

const USAGE = `usage: xmem status [--json] [--socket PATH]

  --json         the full state as JSON (the stream's versioned schema, src/schemas/state.ts)
  --socket PATH  the service's state socket (default $XMEM_STATE_SOCKET or /run/xmem/state.sock)

exit codes: 0 ok, 1 the service answered with something this xmem cannot read, 2 not running or usage error
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, socket: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`xmem status: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let state;
  try {
    state = await fetchState({ socketPath: stateSocketPath(values.socket) });
  } catch (err) {
    process.stderr.write(`xmem status: ${(err as Error).message}\n`);
    return err instanceof StateStreamError && err.kind === 'unreachable' ? 2 : 1;
  }
  process.stdout.write(values.json ? JSON.stringify(state, null, 2) + '\n' : renderStatusTable(state, Date.now()));
  return 0;
}
