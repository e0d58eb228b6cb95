/**
 * Text helpers for the top view and the status table. Everything shown is reduced to printable
 * ASCII first (VM names and reasons can carry guest-influenced text), so a character is a
 * column and padding is exact without a Unicode width table.
 */

export function sanitize(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** Pads or cuts to exactly `width` columns; a cut ends in '~' so it is visibly a cut. */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  const t = sanitize(text);
  if (t.length > width) return width === 1 ? '~' : t.slice(0, width - 1) + '~';
  return align === 'left' ? t.padEnd(width) : t.padStart(width);
}

/** KiB → a short size: "512M", "1.5G", "15.6G", "128G". At most 6 columns below 1000 TiB. */
export function fmtSize(kib: number | null): string {
  if (kib === null) return '-';
  const mib = kib / 1024;
  if (Math.abs(mib) < 1000) return `${Math.round(mib)}M`;
  const gib = mib / 1024;
  if (Math.abs(gib) < 100) return `${gib.toFixed(1)}G`;
  if (Math.abs(gib) < 1000) return `${Math.round(gib)}G`;
  return `${(gib / 1024).toFixed(1)}T`;
}

/** PSI avg10 percent, one decimal, or '-' without an agent. */
export function fmtPct(p: number | null): string {
  return p === null ? '-' : p.toFixed(1);
}

export function fmtPsi(some: number | null, full: number | null): string {
  return some === null && full === null ? '-' : `${fmtPct(some)}/${fmtPct(full)}`;
}

/** A duration as top shows it: "850ms", "12s", "4m", "3h", "2d". */
export function fmtAge(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  const s = Math.max(0, ms) / 1000;
  if (s < 1) return `${Math.round(Math.max(0, ms))}ms`;
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Wall-clock HH:MM:SS in the local time zone (the admin's, like top's clock). */
export function fmtClock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}
