// node anon-hog.mjs MIB RATE: holds MIB of anonymous memory (filled, so it is resident),
// allocated in 4 MiB steps at RATE MiB/s (0: at once), until killed. Unlike the tmpfs hog this
// is "used" memory in Qubes' sense (tmpfs pages count as Cached, so qmemman never sees them).
// Reports data/labr/anon = "done <MiB> ms=<time taken>" through the xenstore CLI.
import { execFileSync } from 'node:child_process';

const mib = Number(process.argv[2] ?? 0);
const rate = Number(process.argv[3] ?? 0);
const held = [];
const t0 = Date.now();
for (let at = 0; at < mib; at += 4) {
  const b = Buffer.allocUnsafeSlow(4 << 20);
  b.fill(at & 0xff);
  held.push(b);
  if (rate > 0) await new Promise((r) => setTimeout(r, 4000 / rate));
}
execFileSync('xenstore-write', ['data/labr/anon', `done ${mib} ms=${Date.now() - t0}`]);
setInterval(() => held.length, 1 << 30);
