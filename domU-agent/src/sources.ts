import path from 'node:path';
import { parseMeminfo, type Meminfo } from '../../src/parsers/meminfo.js';
import { parsePressure, type Pressure } from '../../src/parsers/psi.js';
import { parseVmstat, type Vmstat } from '../../src/parsers/vmstat.js';
import type { ParseResult } from '../../src/parsers/text.js';
import { errnoOf, ProcFile } from './procfile.js';

/** The balloon driver's view (KiB), from /sys/devices/system/xen_memory/xen_memory0. */
export interface Balloon {
  currentKib: number;
  targetKib: number;
}

export interface MemSample {
  meminfo: Meminfo;
  balloon: Balloon | null;
}

/** Everything a report is built from. */
export interface Sample extends MemSample {
  psi: Pressure | null;
  vmstat: Vmstat;
  uptimeMs: number;
}

/** What the agent's loop reads; the real one is ProcSources, tests may script their own. */
export interface Sources {
  /** Memory PSI; ok+null when the kernel has none (no CONFIG_PSI, psi=0). */
  readPsi(): ParseResult<Pressure | null>;
  readMem(): ParseResult<MemSample>;
  /** Everything; `mem`, a memory sample read in the same wake, is used instead of reading it again. */
  readFull(mem?: MemSample): ParseResult<Sample>;
  close(): void;
}

/** errnos meaning "this kernel has no PSI" rather than "reading failed". */
const NO_PSI = new Set(['ENOENT', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL']);

const fail = <T>(error: string): ParseResult<T> => ({ ok: false, error });

/** The balloon driver's files, under the sys root. */
export const BALLOON_DIR = 'devices/system/xen_memory/xen_memory0';
export const BALLOON_CURRENT = `${BALLOON_DIR}/info/current_kb`;

/** Reads the guest's /proc and /sys (roots configurable, so tests can feed captured trees). */
export class ProcSources implements Sources {
  private readonly meminfo: ProcFile;
  private readonly psi: ProcFile;
  private readonly vmstat: ProcFile;
  private readonly uptime: ProcFile;
  private readonly balloonCurrent: ProcFile;
  private readonly balloonTarget: ProcFile;

  constructor(procRoot = '/proc', sysRoot = '/sys') {
    this.meminfo = new ProcFile(path.join(procRoot, 'meminfo'), 16 * 1024);
    this.psi = new ProcFile(path.join(procRoot, 'pressure/memory'), 1024);
    this.vmstat = new ProcFile(path.join(procRoot, 'vmstat'), 128 * 1024);
    this.uptime = new ProcFile(path.join(procRoot, 'uptime'), 128);
    const xm = path.join(sysRoot, BALLOON_DIR);
    this.balloonCurrent = new ProcFile(path.join(xm, 'info/current_kb'), 32);
    this.balloonTarget = new ProcFile(path.join(xm, 'target_kb'), 32);
  }

  private lastPsi: ParseResult<Pressure | null> | null = null;
  /** Reads left before a missing balloon file is looked for again (exceptions are not cheap). */
  private balloonRetryIn = 0;

  readPsi(): ParseResult<Pressure | null> {
    let text: string | null;
    try {
      text = this.psi.readIfChanged();
    } catch (err) {
      const errno = errnoOf(err);
      this.lastPsi = null;
      return NO_PSI.has(errno) ? { ok: true, value: null } : fail(`${this.psi.path}: ${errno}`);
    }
    // Same bytes as last time: same result, without parsing again.
    if (text === null && this.lastPsi) return this.lastPsi;
    this.lastPsi = parsePressure(text ?? this.psi.read());
    return this.lastPsi;
  }

  readMem(): ParseResult<MemSample> {
    // meminfo-writer's race guard: a balloon move between the two reads would pair a MemTotal
    // with the wrong current_kb, so read current_kb around meminfo until it holds still.
    for (let attempt = 0; ; attempt++) {
      const before = this.readKib(this.balloonCurrent);
      let text: string;
      try {
        text = this.meminfo.read();
      } catch (err) {
        return fail(`${this.meminfo.path}: ${errnoOf(err)}`);
      }
      const after = this.readKib(this.balloonCurrent);
      if (before !== after && attempt < 3) continue;
      const meminfo = parseMeminfo(text);
      if (!meminfo.ok) return meminfo;
      const target = after === null ? null : this.readKib(this.balloonTarget);
      const balloon = after !== null && after > 0 ? { currentKib: after, targetKib: target ?? after } : null;
      return { ok: true, value: { meminfo: meminfo.value, balloon } };
    }
  }

  readFull(fresh?: MemSample): ParseResult<Sample> {
    const mem = fresh ? { ok: true as const, value: fresh } : this.readMem();
    if (!mem.ok) return mem;
    const psi = this.readPsi();
    if (!psi.ok) return psi;
    let vmtext: string;
    try {
      vmtext = this.vmstat.read();
    } catch (err) {
      return fail(`${this.vmstat.path}: ${errnoOf(err)}`);
    }
    const vmstat = parseVmstat(vmtext);
    if (!vmstat.ok) return vmstat;
    const uptimeMs = this.readUptimeMs();
    if (uptimeMs === null) return fail(`${this.uptime.path}: unreadable`);
    return { ok: true, value: { ...mem.value, psi: psi.value, vmstat: vmstat.value, uptimeMs } };
  }

  close(): void {
    for (const f of [this.meminfo, this.psi, this.vmstat, this.uptime, this.balloonCurrent, this.balloonTarget]) f.close();
  }

  /**
   * A sysfs KiB value, or null when absent/garbled (not a Xen guest, no balloon driver). A
   * missing balloon is looked for again only every 60 reads, not on every sample.
   */
  private readKib(file: ProcFile): number | null {
    if (file === this.balloonCurrent && this.balloonRetryIn > 0) {
      this.balloonRetryIn--;
      return null;
    }
    try {
      const m = /^([0-9]{1,15})\s*$/.exec(file.read());
      return m ? Number(m[1]) : null;
    } catch {
      if (file === this.balloonCurrent) this.balloonRetryIn = 60;
      return null;
    }
  }

  private readUptimeMs(): number | null {
    try {
      const m = /^([0-9]{1,12})(?:\.([0-9]{1,2}))?\s/.exec(this.uptime.read());
      if (!m) return null;
      return Number(m[1]) * 1000 + Number((m[2] ?? '0').padEnd(2, '0')) * 10;
    } catch {
      return null;
    }
  }
}
