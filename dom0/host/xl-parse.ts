import { z } from 'zod';
import { MIB } from '../../src/units.js';

/**
 * Pure parsers for the two xl outputs the real-Xen adapter reads.
 *
 * Why the plain `xl list` table and not `xl list -l`: xl's `-l` prints, per domain, only
 * `{ "domid", "config" }` where config is libxl's *stored configuration* (xl_info.c,
 * list_domains_details → libxl_retrieve_domain_configuration); it carries neither the current
 * allocation nor the run state. The table (list_domains) prints both, from libxl_dominfo:
 *   printf("%-40s %5d %5lu %5d     %c%c%c%c%c%c  %8.1f", name, domid,
 *          (current_memkb + outstanding_memkb) / 1024, vcpus, r, b, p, s, reason, d, cpu_time)
 * Mem is MiB (floored); the six state letters are running, blocked, paused, shutdown,
 * shutdown reason, dying.
 */

export interface XlDomainRow {
  name: string;
  domid: number;
  memKib: number;
  vcpus: number;
  paused: boolean;
  shutdown: boolean;
  dying: boolean;
}

const RowSchema = z.object({
  name: z.string().min(1).max(256),
  domid: z.number().int().min(0).max(0x7fef), // DOMID_FIRST_RESERVED - 1
  memMib: z.number().int().min(0).max(2 ** 32),
  vcpus: z.number().int().min(0).max(65535),
  state: z.string().regex(/^[r-][b-][p-][s-][-rscwS?][d-]$/),
});

// Anchored at the end: names are left-padded text and (in principle) may contain spaces.
const ROW_RE = /^(.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S{6})\s+(\d+(?:\.\d+)?)\s*$/;

/** Parses `xl list` (the table form). Throws with the offending line on anything unexpected. */
export function parseXlList(text: string): XlDomainRow[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (!header || !/^Name\s+ID\s+Mem\s+VCPUs\s+State\s+Time\(s\)/.test(header)) {
    throw new Error(`xl list: unexpected header ${JSON.stringify(header ?? '')}`);
  }
  return lines.map((line) => {
    const m = ROW_RE.exec(line);
    if (!m) throw new Error(`xl list: unparsable line ${JSON.stringify(line)}`);
    const r = RowSchema.safeParse({
      name: m[1]!.trim(),
      domid: Number(m[2]),
      memMib: Number(m[3]),
      vcpus: Number(m[4]),
      state: m[5],
    });
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new Error(`xl list: bad ${issue?.path.join('.') ?? 'row'} in line ${JSON.stringify(line)}`);
    }
    const s = r.data.state;
    return {
      name: r.data.name,
      domid: r.data.domid,
      memKib: r.data.memMib * MIB,
      vcpus: r.data.vcpus,
      paused: s[2] === 'p',
      shutdown: s[3] === 's',
      dying: s[5] === 'd',
    };
  });
}

export interface XlInfo {
  totalKib: number;
  /** Xen free memory minus outstanding claims (what xl prints as free_memory). */
  freeKib: number;
}

const mib = z.string().regex(/^\d{1,12}$/, 'expected MiB digits').transform(Number);
const InfoSchema = z.object({ total_memory: mib, free_memory: mib });

/** Parses `xl info` ("key : value" lines; memory figures in MiB). */
export function parseXlInfo(text: string): XlInfo {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    fields[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  const r = InfoSchema.safeParse(fields);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`xl info: missing or bad ${issue?.path.join('.') ?? 'field'}`);
  }
  return { totalKib: r.data.total_memory * MIB, freeKib: r.data.free_memory * MIB };
}
