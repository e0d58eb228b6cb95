/**
 * `npm run bench -- <name> [args]`: runs bench/<name>.ts, whose default export is
 * `(argv) => Promise<void>`. Each benchmark prints a table and, as its last line,
 * `RESULT <name> key=value ...`. With no name it lists the benchmarks.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const names = (await readdir(here))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <${names.join('|')}> [args]\n`);
  process.exit(name ? 2 : 0);
}
const mod = (await import(path.join(here, `${name}.ts`))) as { default: (argv: string[]) => Promise<void> };
await mod.default(rest);
