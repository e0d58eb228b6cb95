import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { XcChannel, XcError, XcListSchema } from '../../dom0/host/xc-channel.js';
import { XcHost } from '../../dom0/host/xc-host.js';
import { peerRoot, peerSkipReason } from '../peer/daemon.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(here, 'fake-xc.mjs');
const GIB = 1024 * 1024;

const DOMAINS = [
  { domid: 0, totKib: 1 * GIB, maxKib: 2 ** 40, flags: 1 << 5 },
  { domid: 3, totKib: 400 * 1024, maxKib: 401 * 1024, flags: 1 << 3 }, // paused
  { domid: 4, totKib: 300 * 1024, maxKib: 301 * 1024, flags: 1 << 2 }, // shut down
  { domid: 5, totKib: 200 * 1024, maxKib: 201 * 1024, flags: 1 << 0 }, // dying
];

const channels: XcChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) c.close();
  delete process.env.FAKE_XC;
});

function channel(state: object, timeoutMs = 5000): XcChannel {
  process.env.FAKE_XC = JSON.stringify({ totalKib: 3 * GIB, freeKib: 1 * GIB, domains: DOMAINS, ...state });
  const c = new XcChannel({ helperPath: FAKE, timeoutMs });
  channels.push(c);
  return c;
}

describe('XcHost over the xmem-xc line protocol', () => {
  it('reads Xen free/total memory, allocations, real ceilings and run state in one round', async () => {
    const asked: number[] = [];
    const host = new XcHost({ channel: channel({}), readName: async (d) => (asked.push(d), d === 3 ? 'work' : d === 0 ? 'Domain-0' : null) });
    const f = await host.facts();
    expect(f.totalKib).toBe(3 * GIB);
    expect(f.freeKib).toBe(1 * GIB);
    expect(f.domains).toEqual([
      { domid: 0, name: 'Domain-0', actualKib: 1 * GIB, maxmemKib: 2 ** 40, paused: false, dying: false },
      { domid: 3, name: 'work', actualKib: 400 * 1024, maxmemKib: 401 * 1024, paused: true, dying: false },
      { domid: 4, name: 'domain-4', actualKib: 300 * 1024, maxmemKib: 301 * 1024, paused: false, dying: true },
      { domid: 5, name: 'domain-5', actualKib: 200 * 1024, maxmemKib: 201 * 1024, paused: false, dying: true },
    ]);
    // Names found are remembered; a name not written yet is asked for again.
    await host.facts();
    expect(asked.filter((d) => d === 3)).toHaveLength(1);
    expect(asked.filter((d) => d === 4)).toHaveLength(2);
  });

  it('sets the exact ceiling asked for (no xl rounding), and the next read shows it', async () => {
    const host = new XcHost({ channel: channel({}), readName: async () => 'vm' });
    await host.setMaxmem(3, 777 * 1024 + 0.5);
    const d = (await host.facts()).domains.find((x) => x.domid === 3)!;
    expect(d.maxmemKib).toBe(777 * 1024 + 1);
  });

  it("a hypercall's failure is an XcError with Xen's errno, and the line stays usable", async () => {
    const c = channel({});
    const host = new XcHost({ channel: c, readName: async () => 'vm' });
    await expect(host.setMaxmem(42, 1024)).rejects.toMatchObject({ name: 'XcError', errno: 'ESRCH' });
    await expect(host.facts()).resolves.toMatchObject({ freeKib: 1 * GIB });
    expect(c.starts).toBe(1);
  });

  it('a helper that dies fails the request in flight, and the next request starts a new one', async () => {
    const c = channel({ dieAfter: 2 });
    const host = new XcHost({ channel: c, readName: async () => 'vm' });
    await host.facts(); // info + list
    const err = await host.facts().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XcError);
    expect((err as XcError).message).toMatch(/exited \(code 3\)/);
    await expect(host.facts()).resolves.toMatchObject({ totalKib: 3 * GIB });
    expect(c.starts).toBe(2);
  });

  it('a helper that does not answer is killed after the timeout and replaced', async () => {
    // The timeout covers the stand-in helper's start (a node process): under the parallel suite
    // that alone can take several hundred ms, so it is not cut short here.
    const c = channel({ hangOn: 'list' }, 1500);
    const t0 = Date.now();
    await expect(c.call('list', XcListSchema)).rejects.toMatchObject({ errno: 'ETIMEDOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    const host = new XcHost({ channel: c, readName: async () => 'vm' });
    await expect(host.setMaxmem(3, 1024)).resolves.toBeUndefined();
    expect(c.starts).toBe(2);
  });

  it('an answer that is not the protocol is refused (EPROTO), never trusted', async () => {
    const host = new XcHost({ channel: channel({ garbageOn: 'info' }), readName: async () => 'vm' });
    await expect(host.facts()).rejects.toMatchObject({ errno: 'EPROTO' });
  });

  it('a helper path that does not exist is a clear error, not a crash', async () => {
    const c = new XcChannel({ helperPath: '/nonexistent/xmem-xc' });
    channels.push(c);
    await expect(new XcHost({ channel: c, readName: async () => null }).facts()).rejects.toThrow(/cannot run \/nonexistent\/xmem-xc/);
  });
});

describe('the real xmem-xc helper', () => {
  const skip = peerSkipReason();
  if (skip) console.warn(`SKIP real xmem-xc build: ${skip}`);
  it.skipIf(skip !== null)("builds against Debian's libxenctrl 4.17 and, outside Xen, exits 1 with one clear line", () => {
    const root = peerRoot();
    const lib = path.join(root, 'usr/lib/x86_64-linux-gnu');
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'xmem-xc-')), 'xmem-xc');
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-I', path.join(root, 'usr/include'), '-o', out, path.join(here, '../../dom0/native/xmem-xc.c'), `-L${lib}`, '-l:libxenctrl.so.4.17', `-Wl,-rpath-link,${lib}`]);
    const r = spawnSync(out, [], { input: 'info\n', encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: lib } });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/xmem-xc: cannot open the hypervisor interface/);
  });
});
