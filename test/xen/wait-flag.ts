// wait-flag VM FLAG TIMEOUT_MS: follows xmem's live state stream and prints the wall-clock time
// (epoch ms) at which VM first carries FLAG (e.g. stuck), then exits 0; exits 1 on timeout.
// One long-lived process: polling `xmem status` would cost a node start (seconds under
// emulation) per look. Bundled by lab/build.sh into the dom0 image (bundle/test/xen/wait-flag.js).
import { StateClient } from '../../dom0/state/client.js';
import { stateSocketPath } from '../../dom0/state/paths.js';

const [vm, flag, timeout] = process.argv.slice(2);
const client = new StateClient({ socketPath: stateSocketPath() }).start();
const timer = setTimeout(() => {
  process.stderr.write(`wait-flag: ${vm} not ${flag} within ${timeout} ms\n`);
  process.exit(1);
}, Number(timeout ?? 60000));
client.on('state', (s) => {
  const v = s.vms.find((x) => x.name === vm);
  if (!v || !v.flags.includes(flag as never)) return;
  process.stdout.write(`${Date.now()} ${v.reason ?? ''}\n`);
  clearTimeout(timer);
  client.stop();
  process.exit(0);
});
