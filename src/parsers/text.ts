import type { ParseResult } from '../schemas/report.js';

export type { ParseResult };

/** Shorthand constructors so parsers read as a list of checks. */
export const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
export const fail = <T = never>(error: string): ParseResult<T> => ({ ok: false, error });

/**
 * Splits a procfs-style text into lines after bounding it. Blank lines are dropped (a file being
 * rewritten in place may end in padding); NUL bytes are refused because no /proc file we read
 * contains one, so their presence means the input is not what it claims to be.
 */
export function boundedLines(text: string, maxBytes: number, what: string): ParseResult<string[]> {
  if (typeof text !== 'string') return fail(`${what}: input is not text`);
  if (text.length > maxBytes) return fail(`${what}: input too large (${text.length} > ${maxBytes} bytes)`);
  if (text.includes('\0')) return fail(`${what}: input contains NUL bytes`);
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return fail(`${what}: input is empty`);
  return ok(lines);
}

/** A short, log-safe rendering of an offending line (no control characters, bounded). */
export function quoteLine(line: string): string {
  const clean = line.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > 60 ? `${clean.slice(0, 60)}…` : clean);
}

/** Decimal digits to a safe integer, or null (too long, not digits, beyond 2^53). */
export function safeInt(digits: string): number | null {
  if (!/^[0-9]{1,16}$/.test(digits)) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Checks the bounds of a procfs text without splitting it (the agent parses meminfo every
 * second: no array of lines, no per-line strings beyond the regex captures).
 */
export function checkBounds(text: string, maxBytes: number, what: string): ParseResult<string> {
  if (typeof text !== 'string') return fail(`${what}: input is not text`);
  if (text.length > maxBytes) return fail(`${what}: input too large (${text.length} > ${maxBytes} bytes)`);
  if (text.includes('\0')) return fail(`${what}: input contains NUL bytes`);
  if (text.trim() === '') return fail(`${what}: input is empty`);
  return ok(text);
}

/**
 * Walks `text` line by line with a sticky regex `line` that must match each whole non-blank
 * line (without its newline). Calls `each` with the match; returns the first bad line (1-based
 * number and text) or null.
 */
export function scanLines(text: string, line: RegExp, each: (m: RegExpExecArray) => string | null): { n: number; line: string; why?: string } | null {
  let pos = 0;
  let n = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    n++;
    const blank = end === pos || (text.charCodeAt(pos) <= 32 && text.slice(pos, end).trim() === '');
    if (!blank) {
      line.lastIndex = pos;
      const m = line.exec(text);
      if (!m || line.lastIndex !== end) return { n, line: text.slice(pos, end) };
      const why = each(m);
      if (why !== null) return { n, line: text.slice(pos, end), why };
    }
    pos = end + 1;
  }
  return null;
}
