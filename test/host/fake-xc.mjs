#!/usr/bin/env node
// A stand-in for dom0/native/xmem-xc speaking its line protocol over stdio, for the adapter
// tests (the real helper needs a hypervisor; the Xen lab runs it for real).
// FAKE_XC: JSON {"totalKib", "freeKib", "domains": [...], "dieAfter"?: n, "hangOn"?: request, "garbageOn"?: request}
import { createInterface } from 'node:readline';

const state = JSON.parse(process.env.FAKE_XC ?? '{}');
let served = 0;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  served++;
  if (state.dieAfter !== undefined && served > state.dieAfter) process.exit(3);
  if (line === state.hangOn) return;
  if (line === state.garbageOn) return process.stdout.write('not json\n');
  if (line === 'info') return out({ ok: true, totalKib: state.totalKib, freeKib: state.freeKib });
  if (line === 'list') return out({ ok: true, domains: state.domains });
  const m = /^maxmem (\d+) (\d+)$/.exec(line);
  if (m) {
    const d = state.domains.find((x) => x.domid === Number(m[1]));
    if (!d) return out({ ok: false, errno: 'ESRCH', error: 'setmaxmem: No such process' });
    d.maxKib = Number(m[2]);
    return out({ ok: true });
  }
  out({ ok: false, errno: 'EINVAL', error: 'unknown request' });
});
