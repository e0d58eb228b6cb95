import { parseArgs } from 'node:util';
import { ConfigError, defaultConfig, loadConfig, type XmemConfig } from '../config.js';
import { decide } from '../../src/policy/index.js';
import { POLICIES, type PolicyName } from '../../src/policy/config.js';
import { HostSnapshotSchema, describeIssues } from '../../src/policy/snapshot-schema.js';
import type { HostSnapshot } from '../../src/policy/types.js';

export const summary = 'dry run: read a host snapshot (JSON) on stdin, print the decisions with reasons';

const USAGE = `usage: xmem plan [--policy xmem|qmemman|squeezed|static] [--config FILE] < snapshot.json

Reads a host snapshot (schema: src/policy/snapshot-schema.ts; README "xmem plan") on stdin,
runs one policy pass and prints {"summary", "decisions", "history"} as JSON on stdout.
Nothing is changed anywhere. Per-VM overrides from the config ("vms") apply to VMs whose
snapshot has no "override" of its own.

  --policy P     the policy to run (default: the config's, else xmem)
  --config FILE  the service's JSON config (default: built-in defaults)

exit codes: 0 ok, 2 usage, config or snapshot error
`;

const MAX_STDIN_BYTES = 64 * 1024 * 1024;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_STDIN_BYTES) throw new InputError(`stdin: larger than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

class InputError extends Error {}

/** Parses and validates a snapshot; throws InputError naming every offending path. */
export function parseSnapshot(text: string, source = 'stdin'): HostSnapshot {
  if (text.trim() === '') throw new InputError(`${source}: empty (expected a host snapshot as JSON)`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${source}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const r = HostSnapshotSchema.safeParse(raw);
  if (!r.success) throw new InputError(`${source}: invalid host snapshot\n${describeIssues(r.error.issues)}`);
  return r.data;
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { policy: { type: 'string' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`xmem plan: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.policy !== undefined && !(POLICIES as readonly string[]).includes(values.policy)) {
    process.stderr.write(`xmem plan: --policy: unknown policy '${values.policy}' (one of ${POLICIES.join(', ')})\n`);
    return 2;
  }
  let config: XmemConfig;
  let snapshot: HostSnapshot;
  try {
    config = values.config ? await loadConfig(values.config) : defaultConfig();
    snapshot = parseSnapshot(await readStdin());
  } catch (err) {
    if (err instanceof ConfigError || err instanceof InputError) {
      process.stderr.write(`xmem plan: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const policy = { ...config.policy, ...(values.policy ? { policy: values.policy as PolicyName } : {}) };
  const withOverrides: HostSnapshot = {
    ...snapshot,
    vms: snapshot.vms.map((vm) => (vm.override === null && config.vms[vm.name] ? { ...vm, override: config.vms[vm.name]! } : vm)),
  };
  const result = decide(withOverrides, policy);
  process.stdout.write(JSON.stringify({ policy: policy.policy, ...result }, null, 2) + '\n');
  return 0;
}
