import { execa } from 'execa';
import type { Clock } from '../../src/clock.js';
import type { DomainFacts, HostFacts, XenHost } from './host.js';
import { parseXlInfo, parseXlList, type XlInfo } from './xl-parse.js';

/**
 * The real-Xen adapter. Forking xl is expensive (seconds per call in an emulated dom0, see the
 * xen-lab report), so a pass costs ONE `xl list`; `xl info` runs only every `infoEveryMs` to
 * calibrate Xen's own overhead, and free memory in between is derived from the domain list:
 *   free ≈ total − overhead − Σ actual      (overhead = total − free − Σ actual at calibration)
 * Xen's max_pages is not printed by any xl command, so the adapter remembers what it set; for
 * a domain it never touched it reports actual + 1 MiB, a LOW guess: the applier then raises
 * maxmem before any growth instead of trusting a ceiling that may not be there.
 */

/** x86 LIBXL_MAXMEM_CONSTANT: `xl mem-max X` sets Xen's ceiling to X + 1 MiB. */
export const LIBXL_MAXMEM_CONSTANT_KIB = 1024;

export type XlRunner = (args: string[]) => Promise<string>;

export function execaXl(xlPath = 'xl', timeoutMs = 60_000): XlRunner {
  return async (args) => (await execa(xlPath, args, { timeout: timeoutMs, stripFinalNewline: false })).stdout;
}

export interface XlHostOptions {
  clock: Clock;
  run?: XlRunner;
  /** How often `xl info` recalibrates total memory and Xen's overhead. */
  infoEveryMs?: number;
}

export class XlHost implements XenHost {
  private readonly run: XlRunner;
  private readonly clock: Clock;
  private readonly infoEveryMs: number;
  private info: XlInfo | null = null;
  private infoAtMs = -Infinity;
  private overheadKib = 0;
  private readonly maxmemSet = new Map<number, number>();
  /** Forks made, for logs and tests. */
  calls = 0;

  constructor(opts: XlHostOptions) {
    this.clock = opts.clock;
    this.run = opts.run ?? execaXl();
    this.infoEveryMs = opts.infoEveryMs ?? 60_000;
  }

  private async xl(args: string[]): Promise<string> {
    this.calls++;
    return this.run(args);
  }

  async facts(): Promise<HostFacts> {
    const calibrate = this.info === null || this.clock.now() - this.infoAtMs >= this.infoEveryMs;
    const info = calibrate ? parseXlInfo(await this.xl(['info'])) : this.info!;
    const rows = parseXlList(await this.xl(['list']));
    const sumActual = rows.reduce((s, r) => s + r.memKib, 0);
    if (calibrate) {
      this.info = info;
      this.infoAtMs = this.clock.now();
      this.overheadKib = Math.max(0, info.totalKib - info.freeKib - sumActual);
    }
    const live = new Set(rows.map((r) => r.domid));
    for (const domid of this.maxmemSet.keys()) if (!live.has(domid)) this.maxmemSet.delete(domid);
    const domains: DomainFacts[] = rows.map((r) => ({
      domid: r.domid,
      name: r.name,
      actualKib: r.memKib,
      maxmemKib: this.maxmemSet.get(r.domid) ?? r.memKib + LIBXL_MAXMEM_CONSTANT_KIB,
      paused: r.paused,
      // A shut-down domain is on its way out: treat it like a dying one (never balloon it).
      dying: r.dying || r.shutdown,
    }));
    return {
      totalKib: info.totalKib,
      freeKib: calibrate ? info.freeKib : Math.max(0, info.totalKib - this.overheadKib - sumActual),
      domains,
    };
  }

  /**
   * Sets Xen's ceiling (max_pages, KiB). xl adds LIBXL_MAXMEM_CONSTANT itself and refuses a
   * value below the domain's memory/target, so callers raise it before a target raise and
   * lower it after a target cut. Note: xl ≥ 4.17 also rewrites memory/static-max with the
   * value; the manager keeps the domain's original ceiling itself (see manager/ceiling.ts).
   */
  async setMaxmem(domid: number, kib: number): Promise<void> {
    const xlValue = Math.max(0, Math.ceil(kib) - LIBXL_MAXMEM_CONSTANT_KIB);
    await this.xl(['mem-max', String(domid), `${xlValue}k`]);
    this.maxmemSet.set(domid, xlValue + LIBXL_MAXMEM_CONSTANT_KIB);
  }
}
