import type { GuestReport } from './report.js';

/**
 * The zod-free half of the guest report contract (keys, bounds, encoding, the Qubes number).
 * The guest agent bundles only this file: zod costs ~7 MiB of anonymous memory in a process
 * whose whole budget is 8 MiB. `report.ts` re-exports everything here, so dom0 code keeps
 * importing from one place.
 */
export const REPORT_KEY = 'data/xmem';
/** Qubes' meminfo-writer key: "used" KiB as plain digits. */
export const QUBES_MEMINFO_KEY = 'memory/meminfo';
/** XenServer / XCP-ng guest agents. */
export const XAPI_MEMINFO_FREE_KEY = 'data/meminfo_free';
export const XAPI_MEMINFO_TOTAL_KEY = 'data/meminfo_total';

/** Hard bound on a report's size; xenstore's own per-value quota for guests is 2048 bytes. */
export const REPORT_MAX_BYTES = 1024;

export function encodeGuestReport(r: GuestReport): string {
  return JSON.stringify(r);
}

/** Qubes' used-memory number, as meminfo-writer computes it (KiB). */
export function qubesUsedKib(r: Pick<GuestReport, 'total' | 'free' | 'buf' | 'cache' | 'swtot' | 'swfree' | 'bcur'>): number {
  const total = r.bcur && r.bcur > 0 ? r.bcur : r.total;
  return Math.max(0, total - r.free - r.buf - r.cache + r.swtot - r.swfree);
}
