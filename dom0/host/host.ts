/**
 * The one host interface (the port). Two adapters implement it: real Xen (`xl-host.ts`, xl via
 * execa) and the simulator (`dom0/sim/`). Only what xenstore cannot tell lives here; guest
 * reports, targets and watches go through a XenstoreClient in both cases.
 */

export interface DomainFacts {
  domid: number;
  name: string;
  /** Current allocation, KiB (xl list's Mem). */
  actualKib: number;
  /** Xen's max_pages ceiling, KiB. */
  maxmemKib: number;
  paused: boolean;
  dying: boolean;
}

export interface HostFacts {
  totalKib: number;
  freeKib: number;
  domains: DomainFacts[];
}

export interface XenHost {
  /** One call per balancing pass (real Xen: a single `xl list -l` + cached `xl info`). */
  facts(): Promise<HostFacts>;
  /** Raise or lower Xen's ceiling for a domain (real Xen: `xl mem-max`). */
  setMaxmem(domid: number, kib: number): Promise<void>;
}
