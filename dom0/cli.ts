#!/usr/bin/env node
/**
 * `xmem <command> [args]`: dispatches to dom0/commands/<command>.ts, each of which exports
 * `summary` (one line for --help) and `main(argv): Promise<number>` (the exit code).
 * Exit codes: 0 ok, 1 refused/failed as asked (e.g. a reservation refused), 2 usage or config error.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

interface Command {
  summary: string;
  main(argv: string[]): Promise<number>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const commandsDir = path.join(here, 'commands');
const ext = path.extname(fileURLToPath(import.meta.url)); // .ts under tsx, .js when built

async function listCommands(): Promise<string[]> {
  const files = await readdir(commandsDir);
  return files
    .filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`) && !f.startsWith('_'))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

async function load(name: string): Promise<Command> {
  return (await import(path.join(commandsDir, name + ext))) as Command;
}

async function usage(): Promise<string> {
  const lines = ['usage: xmem <command> [options]   (xmem <command> --help for details)', '', 'commands:'];
  for (const name of await listCommands()) {
    lines.push(`  ${name.padEnd(10)} ${(await load(name)).summary}`);
  }
  return lines.join('\n');
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write((await usage()) + '\n');
    return name ? 0 : 2;
  }
  const known = await listCommands();
  if (!/^[a-z][a-z-]*$/.test(name) || !known.includes(name)) {
    process.stderr.write(`xmem: unknown command '${name}'\n${await usage()}\n`);
    return 2;
  }
  return (await load(name)).main(rest);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`xmem: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
