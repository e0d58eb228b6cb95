import { parseArgs } from 'node:util';
import { AdmissionConnection, admissionSocketPath, connectError } from '../admission/client.js';
import { ReleaseReplySchema } from '../admission/protocol.js';

export const summary = 'release a memory reservation made with `xmem reserve`';

const USAGE = `usage: xmem release <id> [--socket PATH]

  <id>           the reservation id printed by xmem reserve (r-…)
  --socket PATH  admission socket (default $XMEM_ADMISSION_SOCKET or /run/xmem/admission.sock)

exit codes: 0 released, 1 no such live reservation (released or expired), 2 usage error or service unreachable
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { socket: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  } catch (err) {
    process.stderr.write(`xmem release: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const id = parsed.positionals[0];
  if (parsed.positionals.length !== 1 || !id || !/^r-[0-9a-f]{12}$/.test(id)) {
    process.stderr.write(`xmem release: expected one reservation id like r-0123456789ab\n${USAGE}`);
    return 2;
  }
  const socketPath = admissionSocketPath(parsed.values.socket);
  let conn: AdmissionConnection;
  try {
    conn = await AdmissionConnection.connect(socketPath);
  } catch (err) {
    process.stderr.write(`xmem release: ${connectError(err, socketPath)}\n`);
    return 2;
  }
  try {
    const r = await conn.request({ op: 'release', id }, ReleaseReplySchema);
    if (r.ok) process.stdout.write(`released ${id}\n`);
    else process.stderr.write(`xmem release: ${r.message ?? 'refused'}\n`);
    return r.ok ? 0 : 1;
  } catch (err) {
    process.stderr.write(`xmem release: ${(err as Error).message}\n`);
    return 2;
  } finally {
    conn.close();
  }
}
