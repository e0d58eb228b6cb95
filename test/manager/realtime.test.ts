import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { schedulingPolicyOf, toFifo } from '../../dom0/manager/realtime.js';

// Real chrt on real processes (util-linux is on every Debian machine; CI runs as root).
const isRoot = process.getuid?.() === 0;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

function sleeper(bin = 'sleep'): number {
  const c = spawn(bin, ['30'], { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

describe('toFifo', () => {
  it('priority 0 leaves the thread alone', async () => {
    const pid = sleeper();
    expect(await toFifo(pid, 0)).toBe('off: config');
    expect(await schedulingPolicyOf(pid)).toBe(0);
  });

  it.skipIf(!isRoot)('puts the thread at SCHED_FIFO and says so', async () => {
    const pid = sleeper();
    expect(await schedulingPolicyOf(pid)).toBe(0);
    expect(await toFifo(pid, 1)).toBe('SCHED_FIFO 1');
    expect(await schedulingPolicyOf(pid)).toBe(1);
  });

  it('a failure is a status, not an exception', async () => {
    const status = await toFifo(2 ** 22 + 12345, 1); // above pid_max: no such thread
    expect(status).toMatch(/^off: chrt failed \(.+; needs root or CAP_SYS_NICE\)$/);
  });
});

describe('schedulingPolicyOf', () => {
  it.skipIf(!isRoot)('reads the policy past a command name with spaces and parentheses', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xmem-rt-'));
    const odd = path.join(dir, 'a) (b c');
    symlinkSync('/bin/sleep', odd);
    const pid = sleeper(odd);
    // Until the exec has given it the odd name (before it, stat holds node's).
    for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes('(a) (b c)'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toContain('(a) (b c)');
    expect(await toFifo(pid, 2)).toBe('SCHED_FIFO 2');
    expect(await schedulingPolicyOf(pid)).toBe(1);
  });
});
