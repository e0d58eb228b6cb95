import { parseArgs } from 'node:util';
import { fetchState, StateStreamError } from '../state/client.js';
import { stateSocketPath } from '../state/paths.js';
import { runTop } from '../top/app.js';
import { paletteFor } from '../top/palette.js';
import { MIN_ROWS, renderFrame } from '../top/render.js';
import { initialView, normalizeSelection } from '../top/view.js';

export const summary = 'live view of the balancer: every VM, its target, floor, pressure and why';

const USAGE = `usage: xmem top [--socket PATH] [--once]

  --socket PATH  the service's state socket (default $XMEM_STATE_SOCKET or /run/xmem/state.sock)
  --once         print one frame to stdout and exit (for logs and bug reports)

keys: m/p/n sort by memory/pressure/name, up/down select, Enter detail, space pause, h help, q quit
`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { socket: { type: 'string' }, once: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`xmem top: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const endpoint = { socketPath: stateSocketPath(values.socket) };
  if (values.once) return once(endpoint);
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    process.stderr.write('xmem top: needs a terminal; use --once or `xmem status` in scripts\n');
    return 2;
  }
  return runTop(endpoint, { input: process.stdin, output: process.stdout });
}

async function once(endpoint: { socketPath: string }): Promise<number> {
  let state;
  try {
    state = await fetchState(endpoint);
  } catch (err) {
    process.stderr.write(`xmem top: ${(err as Error).message}\n`);
    return err instanceof StateStreamError && err.kind === 'unreachable' ? 2 : 1;
  }
  const out = process.stdout;
  // Into a pipe there is no screen to fit: as wide as a wide terminal, tall enough for every VM.
  const size = out.isTTY ? { cols: out.columns, rows: out.rows } : { cols: 160, rows: Math.max(MIN_ROWS, state.vms.length + 6) };
  const view = normalizeSelection(initialView, []);
  const frame = renderFrame({ state, view, size, conn: { state: 'live', where: endpoint.socketPath }, nowMs: Date.now(), palette: paletteFor(out) });
  out.write(frame.lines.map((l) => (out.isTTY ? l : l.trimEnd())).join('\n') + '\n');
  return 0;
}
