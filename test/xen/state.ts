// state [TIMEOUT_MS]: prints the xmem service's current state (the state stream's JSON, as
// `xmem status --json` does) with a longer wait than status' 5 s: under emulation a busy dom0
// can take longer to answer. Bundled by lab/build.sh into the dom0 image (bundle/test/xen/state.js).
import { fetchState } from '../../dom0/state/client.js';
import { stateSocketPath } from '../../dom0/state/paths.js';

try {
  const state = await fetchState({ socketPath: stateSocketPath() }, Number(process.argv[2] ?? 30000));
  process.stdout.write(JSON.stringify(state) + '\n');
  process.exit(0);
} catch (err) {
  process.stderr.write(`state: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
}
