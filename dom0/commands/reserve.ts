import { parseArgs } from 'node:util';
import { AdmissionConnection, admissionSocketPath, connectError } from '../admission/client.js';
import { ReserveReplySchema, VmNameSchema, type ReserveReply } from '../admission/protocol.js';
import { adviceFor, fmtSize } from '../admission/words.js';
import { parseSizeKib } from '../../src/units.js';

export const summary = 'reserve memory for a VM about to start (or learn why it does not fit)';

const USAGE = `usage: xmem reserve <size> [--for NAME] [--json] [--hold] [--timeout SECONDS] [--socket PATH]

  <size>           512M, 2G, 1.5GiB, or a plain number of bytes
  --for NAME       the VM the memory is for (shown in logs and xmem top)
  --json           print the service's decision as JSON
  --hold           keep the reservation only while this command runs (Ctrl-C releases it)
  --timeout S      how long the service keeps it at most (default: the service's, 120 s)
  --socket PATH    admission socket (default $XMEM_ADMISSION_SOCKET or /run/xmem/admission.sock)

Without --hold the reservation outlives the command: release it with \`xmem release <id>\`.
exit codes: 0 reserved, 1 refused (the reason says what to shut down), 2 usage error or service unreachable
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        for: { type: 'string' }, json: { type: 'boolean' }, hold: { type: 'boolean' },
        timeout: { type: 'string' }, socket: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return usage(positionals.length === 0 ? 'missing <size>' : `one size only (got ${positionals.join(' ')})`);
  let kib: number;
  try {
    kib = parseSizeKib(positionals[0]!);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (kib < 1) return usage('the size must be at least 1 KiB');
  const name = VmNameSchema.safeParse(values.for ?? 'unnamed');
  if (!name.success) return usage(`--for: ${name.error.issues[0]?.message}`);
  let timeoutS: number | undefined;
  if (values.timeout !== undefined) {
    timeoutS = Number(values.timeout);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 86400) return usage('--timeout: seconds, more than 0 and at most 86400');
  }

  const socketPath = admissionSocketPath(values.socket);
  let conn: AdmissionConnection;
  try {
    conn = await AdmissionConnection.connect(socketPath);
  } catch (err) {
    process.stderr.write(`xmem reserve: ${connectError(err, socketPath)}\n`);
    return 2;
  }
  let reply: ReserveReply;
  try {
    reply = await conn.request(
      { op: 'reserve', bytes: kib * 1024, for: name.data, detach: !values.hold, ...(timeoutS !== undefined ? { timeoutS } : {}) },
      ReserveReplySchema,
    );
  } catch (err) {
    process.stderr.write(`xmem reserve: ${(err as Error).message}\n`);
    conn.close();
    return 2;
  }
  process.stdout.write(values.json ? JSON.stringify(reply) + '\n' : describe(reply, !!values.hold));
  if (!reply.ok) {
    conn.close();
    return reply.kind === 'invalid' ? 2 : 1;
  }
  if (!values.hold) {
    conn.close();
    return 0;
  }
  return hold(conn);
}

function usage(msg: string): number {
  process.stderr.write(`xmem reserve: ${msg}\n${USAGE}`);
  return 2;
}

/** --hold: the reservation lives as long as this process and its connection. */
function hold(conn: AdmissionConnection): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => {
      conn.close();
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    conn.socket.once('close', () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.stderr.write('xmem reserve: the service ended the reservation (timeout or service stop)\n');
      resolve(0);
    });
  });
}

export function describe(r: ReserveReply, held: boolean): string {
  if (r.ok) {
    const end = held ? 'held until this command exits (Ctrl-C)' : `release with: xmem release ${r.id}`;
    return `${r.message}\n  id ${r.id}, expires in ${r.expiresInS} s; ${end}\n`;
  }
  const lines = [`refused: ${r.message}`];
  const f = r.refusal;
  if (f) {
    lines.push(`  needed            ${fmtSize(f.neededKib)}`);
    lines.push(`  free now          ${fmtSize(f.availableKib)}`);
    lines.push(`  reclaimable       ${fmtSize(f.reclaimableKib)} (above the floors of running VMs)`);
    for (const d of f.donors) lines.push(`    ${d.name.padEnd(16)}${fmtSize(d.surplusKib).padStart(9)}  (has ${fmtSize(d.actualKib)}, floor ${fmtSize(d.floorKib)})`);
    lines.push(`  short by          ${fmtSize(f.missingKib)}`);
    lines.push(`  to start it: ${adviceFor(f)}`);
  }
  return lines.join('\n') + '\n';
}
