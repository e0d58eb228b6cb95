import type { DomainFacts, HostFacts, XenHost } from './host.js';
import { XcAckSchema, XcInfoSchema, XcListSchema, type XcChannel } from './xc-channel.js';

/** XEN_DOMINF_* (xen/domctl.h). */
const DOMINF_DYING = 1 << 0;
const DOMINF_SHUTDOWN = 1 << 2;
const DOMINF_PAUSED = 1 << 3;

/**
 * The real-Xen adapter over libxenctrl (the `xmem-xc` helper): a pass costs two hypercalls, no
 * fork, and every figure is Xen's own — free memory from physinfo, the real max_pages ceiling
 * (xl prints neither), allocations in pages rather than xl's whole MiB. Names are not Xen's to
 * know: they are read once per domain from xenstore, as libxl does.
 */
export interface XcHostOptions {
  channel: XcChannel;
  /** `/local/domain/<id>/name`, or null while the toolstack has not written it yet. */
  readName: (domid: number) => Promise<string | null>;
}

export class XcHost implements XenHost {
  private readonly names = new Map<number, string>();

  constructor(private readonly opts: XcHostOptions) {}

  async facts(): Promise<HostFacts> {
    const { channel } = this.opts;
    const [info, list] = await Promise.all([channel.call('info', XcInfoSchema), channel.call('list', XcListSchema)]);
    const live = new Set(list.domains.map((d) => d.domid));
    for (const domid of this.names.keys()) if (!live.has(domid)) this.names.delete(domid);
    const domains: DomainFacts[] = await Promise.all(
      list.domains.map(async (d) => ({
        domid: d.domid,
        name: await this.nameOf(d.domid),
        actualKib: d.totKib,
        maxmemKib: d.maxKib,
        paused: (d.flags & DOMINF_PAUSED) !== 0,
        // A shut-down domain is on its way out: treat it like a dying one (never balloon it).
        dying: (d.flags & (DOMINF_DYING | DOMINF_SHUTDOWN)) !== 0,
      })),
    );
    return { totalKib: info.totalKib, freeKib: info.freeKib, domains };
  }

  /** Xen's max_pages, KiB, exactly (`xl mem-max X` would set X + 1 MiB and rewrite static-max). */
  async setMaxmem(domid: number, kib: number): Promise<void> {
    await this.opts.channel.call(`maxmem ${domid} ${Math.max(0, Math.ceil(kib))}`, XcAckSchema);
  }

  private async nameOf(domid: number): Promise<string> {
    const known = this.names.get(domid);
    if (known !== undefined) return known;
    const name = await this.opts.readName(domid).catch(() => null);
    if (name === null) return domid === 0 ? 'Domain-0' : `domain-${domid}`; // not cached: asked again next pass
    this.names.set(domid, name);
    return name;
  }
}
