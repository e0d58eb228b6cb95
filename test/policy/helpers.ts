import { PolicyConfigSchema, type PolicyConfig, type PolicyConfigInput } from '../../src/policy/config.js';
import { EMPTY_HISTORY, type GuestSignal, type HostSnapshot, type VmSnapshot } from '../../src/policy/types.js';
import type { GuestReport, Psi } from '../../src/schemas/report.js';

export const M = 1024;
export const G = 1024 * 1024;

export function cfg(over: PolicyConfigInput = {}): PolicyConfig {
  return PolicyConfigSchema.parse(over);
}

/**
 * A guest report whose derived numbers are easy to compute by hand:
 * unreclaimable = total − free − afile − ifile − srec = `unrec`, Committed_AS = `commit`,
 * Active(file) = `afile`; MemTotal = allocation − 64 MiB (the gap).
 */
export function xmemReport(o: { allocation: number; commit: number; unrec: number; afile?: number; psi?: Psi | null; seq?: number }): GuestReport {
  const total = o.allocation - 64 * M;
  const afile = o.afile ?? 32 * M;
  const ifile = 16 * M;
  const srec = 8 * M;
  const free = Math.max(0, total - o.unrec - afile - ifile - srec);
  return {
    v: 1, seq: o.seq ?? 1, up: 1000, total, free, avail: free + afile + ifile, buf: 0, cache: afile + ifile,
    afile, ifile, shmem: 0, srec, sunrec: 4 * M, anon: Math.max(0, o.unrec - 4 * M), mlock: 0,
    swtot: 0, swfree: 0, commit: o.commit, bcur: o.allocation, btgt: o.allocation, psi: o.psi ?? null,
    rfa: 0, rff: 0, swin: 0, swout: 0,
  };
}

export function psi(o: Partial<Psi> = {}): Psi {
  return { s10: 0, s60: 0, s300: 0, stot: 0, f10: 0, f60: 0, f300: 0, ftot: 0, ...o };
}

export function xmemSignal(o: Parameters<typeof xmemReport>[0]): GuestSignal {
  return { kind: 'xmem', report: xmemReport(o), ageMs: 100 };
}

export function vm(domid: number, o: Partial<VmSnapshot> & { actualKib: number }): VmSnapshot {
  return {
    domid,
    name: domid === 0 ? 'dom0' : `vm${domid}`,
    targetKib: o.actualKib,
    maxmemKib: o.actualKib + 1024,
    staticMaxKib: 8 * G,
    paused: false,
    dying: false,
    stuck: false,
    signal: { kind: 'none', why: 'test' },
    override: null,
    history: EMPTY_HISTORY,
    ...o,
  };
}

export function host(vms: VmSnapshot[], o: Partial<HostSnapshot> = {}): HostSnapshot {
  return { nowMs: 1_000_000, totalKib: 64 * G, freeKib: 4 * G, reservations: [], vms, ...o };
}

export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
