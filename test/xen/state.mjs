// node state.mjs [TIMEOUT_MS]: prints the xmem service's current state (the state stream's
// JSON, as `xmem status --json` does) with a longer wait than status' 5 s: under emulation a
// busy dom0 can take longer to answer.
import { fetchState } from '/opt/xmem/dom0/state/client.js';
import { stateSocketPath } from '/opt/xmem/dom0/state/paths.js';

try {
  const state = await fetchState({ socketPath: stateSocketPath() }, Number(process.argv[2] ?? 30000));
  process.stdout.write(JSON.stringify(state) + '\n');
  process.exit(0);
} catch (err) {
  process.stderr.write(`state: ${err?.message ?? err}\n`);
  process.exit(1);
}
