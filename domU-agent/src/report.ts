import type { GuestReport } from '../../src/schemas/report.js';
import { qubesUsedKib } from '../../src/schemas/report-wire.js';
import type { Pressure } from '../../src/parsers/psi.js';
import type { MemSample, Sample } from './sources.js';
import type { MemView, PsiView } from './schedule.js';

/** The compact versioned report (src/schemas/report.ts) built from one sample. Pure. */
export function buildReport(s: Sample, seq: number): GuestReport {
  const m = s.meminfo;
  return {
    v: 1,
    seq,
    up: s.uptimeMs,
    total: m.memTotal,
    free: m.memFree,
    avail: m.memAvailable,
    buf: m.buffers,
    cache: m.cached,
    afile: m.activeFile,
    ifile: m.inactiveFile,
    shmem: m.shmem,
    srec: m.sReclaimable,
    sunrec: m.sUnreclaim,
    anon: m.anonPages,
    mlock: m.mlocked,
    swtot: m.swapTotal,
    swfree: m.swapFree,
    commit: m.committedAS,
    bcur: s.balloon?.currentKib ?? null,
    btgt: s.balloon?.targetKib ?? null,
    psi: s.psi ? psiFields(s.psi) : null,
    rfa: s.vmstat.refaultAnon,
    rff: s.vmstat.refaultFile,
    swin: s.vmstat.pswpin,
    swout: s.vmstat.pswpout,
  };
}

function psiFields(p: Pressure): NonNullable<GuestReport['psi']> {
  const full = p.full ?? { avg10: 0, avg60: 0, avg300: 0, total: 0 };
  return {
    s10: p.some.avg10, s60: p.some.avg60, s300: p.some.avg300, stot: p.some.total,
    f10: full.avg10, f60: full.avg60, f300: full.avg300, ftot: full.total,
  };
}

/** Qubes' used number for a memory sample (balloon current replaces MemTotal when known). */
export function qubesUsed(s: MemSample): number {
  const m = s.meminfo;
  return qubesUsedKib({
    total: m.memTotal, free: m.memFree, buf: m.buffers, cache: m.cached,
    swtot: m.swapTotal, swfree: m.swapFree, bcur: s.balloon?.currentKib ?? null,
  });
}

export function memView(s: MemSample): MemView {
  const m = s.meminfo;
  return {
    totalKib: s.balloon?.currentKib ?? m.memTotal,
    totalIsBalloon: s.balloon !== null,
    usedKib: qubesUsed(s),
    availKib: m.memAvailable,
    commitKib: m.committedAS,
    swapUsedKib: m.swapTotal - m.swapFree,
  };
}

export function psiView(p: Pressure): PsiView {
  return { total: p.some.total, avg10: p.some.avg10, avg60: p.some.avg60 };
}
