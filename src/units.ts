/** All memory quantities in xmem are integer KiB, Xen's and xenstore's own unit. */
export const KIB = 1;
export const MIB = 1024;
export const GIB = 1024 * 1024;

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$/i;

/**
 * Parses an admin-written size ("512M", "1.5G", "200MiB", "1048576" = bytes) into KiB.
 * Plain numbers are bytes, as in qmemman.conf and qubes' parse_size.
 */
export function parseSizeKib(text: string): number {
  const m = SIZE_RE.exec(text);
  if (!m) throw new Error(`not a size: ${JSON.stringify(text)} (use e.g. 512M, 2G, 1048576)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase();
  const bytes = unit === '' ? n : n * 1024 ** ({ k: 1, m: 2, g: 3, t: 4 } as Record<string, number>)[unit]!;
  return Math.floor(bytes / 1024);
}

export function fmtMib(kib: number): string {
  return `${Math.round(kib / 1024)}M`;
}
