import { z } from 'zod';

/**
 * The guest agent's report: one compact JSON object written atomically to
 * `/local/domain/<id>/data/xmem` (relative `data/xmem` from inside the guest; libxl makes
 * `data/` guest-writable). Every value arrives from an untrusted guest: the manager parses
 * it with `parseGuestReport`, which bounds size, types and ranges and never throws.
 *
 * All memory values are KiB. PSI averages are percent (0..100), totals microseconds.
 */
import { REPORT_MAX_BYTES } from './report-wire.js';

// Keys, bounds, encoding and the Qubes number live in the zod-free report-wire.ts (the guest
// agent bundles it without zod); re-exported so dom0 code has one import.
export {
  REPORT_KEY, QUBES_MEMINFO_KEY, XAPI_MEMINFO_FREE_KEY, XAPI_MEMINFO_TOTAL_KEY, REPORT_MAX_BYTES,
  encodeGuestReport, qubesUsedKib,
} from './report-wire.js';

const kib = z.number().int().min(0).max(2 ** 42); // ≤ 4 PiB
const pct = z.number().min(0).max(100);
const usec = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const PsiSchema = z.strictObject({
  s10: pct, s60: pct, s300: pct, stot: usec,
  f10: pct, f60: pct, f300: pct, ftot: usec,
});
export type Psi = z.infer<typeof PsiSchema>;

export const GuestReportSchema = z.strictObject({
  v: z.literal(1),
  /** Monotonic per agent run; lets the manager tell a restart from a replay. */
  seq: count,
  /** Guest uptime in ms when the report was taken. */
  up: count,
  total: kib,      // MemTotal
  free: kib,       // MemFree
  avail: kib,      // MemAvailable
  buf: kib,        // Buffers
  cache: kib,      // Cached
  afile: kib,      // Active(file)
  ifile: kib,      // Inactive(file)
  shmem: kib,      // Shmem
  srec: kib,       // SReclaimable
  sunrec: kib,     // SUnreclaim
  anon: kib,       // AnonPages
  mlock: kib,      // Mlocked
  swtot: kib,      // SwapTotal
  swfree: kib,     // SwapFree
  commit: kib,     // Committed_AS
  /** Balloon driver's view (xen_memory0/info/current_kb, target_kb); null when absent. */
  bcur: kib.nullable(),
  btgt: kib.nullable(),
  /** Memory PSI; null on kernels without CONFIG_PSI or with psi=0. */
  psi: PsiSchema.nullable(),
  /** /proc/vmstat counters (cumulative): workingset refaults and swap traffic in pages. */
  rfa: count, rff: count, swin: count, swout: count,
});
export type GuestReport = z.infer<typeof GuestReportSchema>;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses an untrusted report string. Never throws; the error is one short log-safe line. */
export function parseGuestReport(untrusted: string): ParseResult<GuestReport> {
  if (untrusted.length > REPORT_MAX_BYTES) {
    return { ok: false, error: `report too large (${untrusted.length} > ${REPORT_MAX_BYTES} bytes)` };
  }
  let json: unknown;
  try {
    json = JSON.parse(untrusted);
  } catch {
    return { ok: false, error: 'report is not JSON' };
  }
  const r = GuestReportSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, error: `report invalid at ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'unknown'}` };
  }
  return { ok: true, value: r.data };
}

/** Parses Qubes' `memory/meminfo` (digits only, KiB), as qmemman's sanitizer does. */
export function parseQubesMeminfo(untrusted: string): ParseResult<number> {
  if (untrusted.length === 0 || untrusted.length > 15 || !/^[0-9]+$/.test(untrusted)) {
    return { ok: false, error: 'memory/meminfo is not 1-15 decimal digits' };
  }
  return { ok: true, value: Number(untrusted) };
}
