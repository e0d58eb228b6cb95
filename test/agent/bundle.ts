import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Builds the guest bundle exactly as `npm run build:agent` does, into a temp dir; returns its path. */
export async function buildAgentBundle(): Promise<string> {
  const outfile = path.join(mkdtempSync(path.join(os.tmpdir(), 'xmem-agent-')), 'xmem-agent.mjs');
  await build({
    entryPoints: [path.join(root, 'domU-agent/src/cli.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    logLevel: 'warning',
    outfile,
  });
  return outfile;
}
