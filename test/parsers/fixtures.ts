import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROC_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/proc');

export function fixture(rel: string): string {
  return readFileSync(path.join(PROC_FIXTURES, rel), 'latin1');
}

/** Reads a live /proc file, or null where this machine lacks it (no PSI). */
export function live(file: string): string | null {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return null;
  }
}
