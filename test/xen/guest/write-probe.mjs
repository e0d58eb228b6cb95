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
// a read pending on the device can keep the process alive; the answers are out already
await Promise.race([xs.close(), new Promise((r) => setTimeout(r, 1000))]);
process.exit(0);
