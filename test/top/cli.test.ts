/** `xmem status` and `xmem top --once` as a script runs them: the real CLI in a child process. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { execa } from 'execa';
import { startStateServer, type StateServer } from '../../dom0/state/server.js';
import { HostStateSchema } from '../../src/schemas/state.js';
import { FakeSource, hostState } from './fixtures.js';
import { tempDir } from './helpers.js';
import { repoRoot } from './tmux.js';

const xmem = (...args: string[]) =>
  execa('node', ['--import', 'tsx', 'dom0/cli.ts', ...args], { cwd: repoRoot, reject: false, env: { NO_COLOR: '1', XMEM_STATE_SOCKET: '' } });

describe('xmem status / top --once', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let sock: string;
  let server: StateServer;
  const state = hostState({ atMs: Date.now() });

  beforeAll(async () => {
    tmp = await tempDir();
    sock = path.join(tmp.dir, 'state.sock');
    server = await startStateServer(new FakeSource(state), { socketPath: sock });
  });
  afterAll(async () => {
    await server.close();
    await tmp.cleanup();
  });

  it('status --json prints the versioned state, valid against the schema', async () => {
    const r = await xmem('status', '--json', '--socket', sock);
    expect(r.exitCode).toBe(0);
    expect(HostStateSchema.parse(JSON.parse(r.stdout))).toEqual(state);
  });

  it('status prints a table with every VM', async () => {
    const r = await xmem('status', '--socket', sock);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    const head = lines.findIndex((l) => l.startsWith('NAME'));
    expect(lines.slice(head + 1, head + 5).map((l) => l.split(/\s+/)[0])).toEqual(['anon', 'browser', 'dom0', 'work']);
  });

  it('exits 2 with a clear message when the service is not running', async () => {
    const missing = path.join(tmp.dir, 'nothing.sock');
    const r = await xmem('status', '--socket', missing);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`xmem status: the xmem service is not running (no state socket at ${missing})`);
    const t = await xmem('top', '--once', '--socket', missing);
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toContain('not running');
  });

  it('exits 2 on a bad option', async () => {
    const r = await xmem('status', '--jsn');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--jsn'/);
  });

  it('top --once renders one frame into a pipe, plain and uncut', async () => {
    const r = await xmem('top', '--once', '--socket', sock);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^policy xmem {2}total 16\.0G/);
    expect(r.stdout).not.toMatch(/\x1b/);
    expect(lines.find((l) => l.startsWith('browser'))).toMatch(/stuck: balloon did not move in 30s$/);
  });
});
