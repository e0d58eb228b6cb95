// Runs inside a lab guest (node /opt/xmem/lab/write-probe.mjs PATH...): tries to write each
// path through xmem's own xenstore client over /dev/xen/xenbus, as the agent would, and prints
// "<path> ok" or "<path> <errno>" per path.
import { connectXenstore } from '/opt/xmem/src/xenstore/client.js';

const t0 = Date.now();
const xs = await connectXenstore({ path: '/dev/xen/xenbus', reconnect: false });
console.log(`connected ${Date.now() - t0}ms`);
for (const p of process.argv.slice(2)) {
  try {
    await xs.write(p, 'lab-probe');
    console.log(`${p} ok`);
  } catch (err) {
    console.log(`${p} ${err?.errno ?? err?.code ?? String(err)}`);
  }
}
// Neither close() nor process.exit() ends a node process while a read on /dev/xen/xenbus is
// pending in libuv's thread pool (seen in the lab: the probe hung until killed); the answers
// are printed, so end it the hard way.
await Promise.race([xs.close(), new Promise((r) => setTimeout(r, 1000))]);
process.kill(process.pid, 'SIGKILL');
