import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceSchema } from '../../dom0/config.js';
import { createLogger } from '../../dom0/log.js';
import { defaultXcHelper, openXenHost } from '../../dom0/host/open.js';
import { XcHost } from '../../dom0/host/xc-host.js';
import { XlHost } from '../../dom0/host/xl-host.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, '../manager/fixtures');
const dir = mkdtempSync(path.join(tmpdir(), 'xmem-open-'));
// A stand-in xl printing the hand-written fixtures (test/manager/fixtures).
const fakeXl = path.join(dir, 'xl');
writeFileSync(fakeXl, `#!/bin/sh\ncase "$1" in list) cat '${fixtures}/xl-list.txt';; info) cat '${fixtures}/xl-info.txt';; *) exit 1;; esac\n`);
chmodSync(fakeXl, 0o755);
const brokenXc = path.join(dir, 'xmem-xc-broken');
writeFileSync(brokenXc, "#!/bin/sh\necho 'xmem-xc: cannot open the hypervisor interface' >&2\nexit 1\n");
chmodSync(brokenXc, 0o755);

const xs = { tryRead: async () => null } as unknown as XenstoreClient;
const lines: string[] = [];
const log = createLogger('info', { write: (l: string) => void lines.push(l) });
const svc = (o: object) => ServiceSchema.parse({ xlPath: fakeXl, ...o });
const closers: (() => void)[] = [];
afterEach(() => {
  closers.splice(0).forEach((c) => c());
  lines.length = 0;
  delete process.env.FAKE_XC;
});

describe('openXenHost: which way xmem talks to Xen', () => {
  it('auto: the helper when it answers', async () => {
    process.env.FAKE_XC = JSON.stringify({ totalKib: 1, freeKib: 1, domains: [] });
    const host = await openXenHost(svc({ xcHelperPath: path.join(here, 'fake-xc.mjs') }), xs, log);
    closers.push(() => host?.close());
    expect(host).toBeInstanceOf(XcHost);
    expect(lines.join('')).toMatch(/through xmem-xc/);
  });
  it('auto: xl, with one warning, when the helper is there but cannot reach Xen', async () => {
    const host = await openXenHost(svc({ xcHelperPath: brokenXc }), xs, log);
    expect(host).toBeInstanceOf(XlHost);
    expect(lines.join('')).toMatch(/exited \(code 1\): xmem-xc: cannot open the hypervisor interface.*xmem-xc unusable/);
  });
  it('auto: xl when there is no helper at all', async () => {
    const host = await openXenHost(svc({ xcHelperPath: path.join(dir, 'none') }), xs, log);
    expect(host).toBeInstanceOf(XlHost);
    expect(lines.join('')).toMatch(/no xmem-xc helper/);
  });
  it('xc: a helper that cannot reach Xen is fatal (null, with the reason), never a silent xl', async () => {
    expect(await openXenHost(svc({ xenControl: 'xc', xcHelperPath: brokenXc }), xs, log)).toBeNull();
    expect(lines.join('')).toMatch(/"level":60.*cannot read the host through xmem-xc/);
  });
  it('xl: never starts the helper; fatal when xl cannot list', async () => {
    expect(await openXenHost(svc({ xenControl: 'xl', xcHelperPath: brokenXc }), xs, log)).toBeInstanceOf(XlHost);
    expect(await openXenHost(svc({ xenControl: 'xl', xlPath: path.join(dir, 'none') }), xs, log)).toBeNull();
  });
  it('the default helper sits in native/ beside the real entry point', () => {
    expect(defaultXcHelper(path.join(here, 'fake-xc.mjs'))).toBe(path.join(here, 'native', 'xmem-xc'));
  });
});
