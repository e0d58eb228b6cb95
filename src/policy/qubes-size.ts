/**
 * Qubes' `qubes.utils.parse_size`, reproduced so qmemman.conf values mean exactly what they
 * mean to qmemman: digits are bytes; K/KB/M/MB/G/GB are powers of 1000 (so the shipped
 * `vm-min-mem = 200M` is 200 000 000 bytes, not 200 MiB); Ki/KiB/Mi/MiB/Gi/GiB powers of
 * 1024. Case-insensitive, whitespace around the number allowed, integers only.
 * Returns bytes, or null when Qubes would raise "Invalid size".
 */
const UNITS: [string, number][] = [
  // Same order as Qubes' table: the first suffix that matches wins.
  ['K', 1000], ['KB', 1000], ['M', 1000 ** 2], ['MB', 1000 ** 2], ['G', 1000 ** 3], ['GB', 1000 ** 3],
  ['KI', 1024], ['KIB', 1024], ['MI', 1024 ** 2], ['MIB', 1024 ** 2], ['GI', 1024 ** 3], ['GIB', 1024 ** 3],
];

export function parseQubesSize(text: string): number | null {
  if (text.length > 64) return null;
  const size = text.trim().toUpperCase();
  if (/^[0-9]+$/.test(size)) return Number(size);
  for (const [unit, mult] of UNITS) {
    if (size.endsWith(unit)) {
      // Python's int() accepts surrounding whitespace, an optional sign and underscores
      // between digits; sizes are never negative, so only plain digits are taken here.
      const num = size.slice(0, -unit.length).trim();
      if (!/^[0-9]+$/.test(num)) return null;
      const bytes = Number(num) * mult;
      return Number.isSafeInteger(bytes) ? bytes : null;
    }
  }
  return null;
}
