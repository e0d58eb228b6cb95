import type { GuestReport } from '../../src/schemas/report.js';

/** A plausible xmem agent report (KiB), with overrides. */
export function report(over: Partial<GuestReport> = {}): GuestReport {
  return {
    v: 1, seq: 1, up: 1000, total: 1_000_000, free: 200_000, avail: 500_000, buf: 10_000, cache: 250_000,
    afile: 100_000, ifile: 100_000, shmem: 5000, srec: 20_000, sunrec: 10_000, anon: 300_000, mlock: 0,
    swtot: 0, swfree: 0, commit: 600_000, bcur: 1_000_000, btgt: 1_000_000, psi: null,
    rfa: 0, rff: 0, swin: 0, swout: 0, ...over,
  };
}
