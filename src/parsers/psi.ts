import { boundedLines, fail, ok, quoteLine, safeInt, type ParseResult } from './text.js';

/** /proc/pressure/memory is two ~55-byte lines. */
export const PSI_MAX_BYTES = 1024;

/** One PSI line: averages in percent (0..100), total stall time in microseconds. */
export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  total: number;
}

/** `full` is null only for resources whose file lacks it (cpu before Linux 5.13). */
export interface Pressure {
  some: PsiLine;
  full: PsiLine | null;
}

const AVG = '([0-9]{1,3}\\.[0-9]{2})';
const LINE = new RegExp(`^(some|full) avg10=${AVG} avg60=${AVG} avg300=${AVG} total=([0-9]{1,20})$`);

/** Parses a /proc/pressure/<resource> file (or a cgroup's <resource>.pressure). */
export function parsePressure(text: string): ParseResult<Pressure> {
  const lines = boundedLines(text, PSI_MAX_BYTES, 'pressure');
  if (!lines.ok) return lines;
  const seen: Partial<Record<'some' | 'full', PsiLine>> = {};
  for (const [i, line] of lines.value.entries()) {
    const m = LINE.exec(line);
    if (!m) return fail(`pressure: line ${i + 1} is not "some|full avg10=… avg60=… avg300=… total=…": ${quoteLine(line)}`);
    const [, kind, a10, a60, a300, tot] = m as unknown as [string, 'some' | 'full', string, string, string, string];
    if (seen[kind]) return fail(`pressure: duplicate "${kind}" line`);
    const avgs = [Number(a10), Number(a60), Number(a300)];
    if (avgs.some((a) => a > 100)) return fail(`pressure: ${kind} average above 100%`);
    const total = safeInt(tot);
    if (total === null) return fail(`pressure: ${kind} total is out of range`);
    seen[kind] = { avg10: avgs[0]!, avg60: avgs[1]!, avg300: avgs[2]!, total };
  }
  if (!seen.some) return fail('pressure: missing "some" line');
  return ok({ some: seen.some, full: seen.full ?? null });
}
