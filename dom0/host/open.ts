import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { realClock } from '../../src/clock.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import type { ServiceConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { XenHost } from './host.js';
import { XcChannel } from './xc-channel.js';
import { XcHost } from './xc-host.js';
import { XlHost, execaXl } from './xl-host.js';

/** `native/xmem-xc` beside the xmem entry point that runs (dist/dom0/cli.js, through a
 *  /usr/bin/xmem symlink too): where `npm run build:xc` puts it. */
export function defaultXcHelper(entry = process.argv[1]): string {
  let dir = process.cwd();
  try {
    if (entry) dir = path.dirname(realpathSync(entry));
  } catch {
    // an entry that vanished: relative to the working directory, which will not exist either
  }
  return path.join(dir, 'native', 'xmem-xc');
}

/**
 * Picks the real-Xen adapter (service.xenControl) and proves it with one read of the host:
 * "xc" must work, "xl" must work, "auto" tries xc and falls back to xl with one log line.
 * Null (after a fatal log line) when Xen cannot be read at all.
 */
export async function openXenHost(svc: ServiceConfig, xs: XenstoreClient, log: Logger): Promise<(XenHost & { close(): void }) | null> {
  const helperPath = svc.xcHelperPath ?? defaultXcHelper();
  if (svc.xenControl !== 'xl' && (svc.xenControl === 'xc' || existsSync(helperPath))) {
    const channel = new XcChannel({ helperPath });
    const host = Object.assign(new XcHost({ channel, readName: (domid) => readName(xs, domid) }), { close: () => channel.close() });
    try {
      await host.facts();
      log.info({ helper: helperPath }, 'talking to Xen through xmem-xc (libxenctrl)');
      return host;
    } catch (err) {
      channel.close();
      const msg = (err as Error).message;
      if (svc.xenControl === 'xc') {
        log.fatal({ err: msg, helper: helperPath }, 'cannot read the host through xmem-xc');
        return null;
      }
      log.warn({ err: msg, helper: helperPath }, 'xmem-xc unusable; forking xl for every pass instead');
    }
  } else if (svc.xenControl === 'auto') {
    log.info({ helper: helperPath }, 'no xmem-xc helper (npm run build:xc); forking xl for every pass');
  }
  const xl = Object.assign(new XlHost({ clock: realClock, run: execaXl(svc.xlPath), infoEveryMs: svc.xlInfoEveryMs }), { close: () => {} });
  try {
    await xl.facts();
    return xl;
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'cannot read the domain list with xl');
    return null;
  }
}

/** A domain's name as the toolstack wrote it; guests cannot write it, but it is bounded anyway. */
async function readName(xs: XenstoreClient, domid: number): Promise<string | null> {
  const name = await xs.tryRead(`/local/domain/${domid}/name`);
  return name !== null && name.length > 0 && name.length <= 128 ? name : null;
}
