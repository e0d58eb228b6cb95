import { readFile } from 'node:fs/promises';
import { execa } from 'execa';

/**
 * The manager's main thread at SCHED_FIFO (`service.fifoPriority`, 0 = off).
 *
 * On a small dom0 a woken task that finds an ordinary task running on its vCPU can wait up to a
 * scheduler tick (4 ms at HZ = 250) for it: that wait, in about one reaction in a hundred, is most of the
 * react benchmark's p99 (README, "Limits": React p99). A real-time thread preempts ordinary tasks at once.
 * Only the main thread, where passes run: V8's helper threads (compiler, GC) stay ordinary,
 * so a long compile or collection on them cannot hold a dom0 vCPU against everything else.
 * It is applied after start-up, from inside (a unit's ExecStartPost would race node creating
 * those threads, and they inherit the policy). Passes run one at a time, at least
 * minPassIntervalMs apart however often guests write, so guests cannot make it monopolise a CPU; the kernel's RT throttling
 * (sched_rt_runtime_us) is the backstop.
 */

/** The scheduling policy of a thread (1 = SCHED_FIFO), from /proc/PID/stat field 41. */
export async function schedulingPolicyOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
}

/** Puts thread `pid` at SCHED_FIFO `priority` with chrt (util-linux). Returns a status for the
 *  log: 'SCHED_FIFO N', or 'off: …' with why. Never throws: balancing goes on either way. */
export async function toFifo(pid: number, priority: number): Promise<string> {
  if (priority === 0) return 'off: config';
  try {
    await execa('chrt', ['--fifo', '--pid', String(priority), String(pid)]);
  } catch (err) {
    const e = err as { stderr?: string; shortMessage?: string; message: string };
    return `off: chrt failed (${(e.stderr || e.shortMessage || e.message).split('\n')[0]}; needs root or CAP_SYS_NICE)`;
  }
  const policy = await schedulingPolicyOf(pid).catch(() => NaN);
  return policy === 1 ? `SCHED_FIFO ${priority}` : `off: chrt ran but the policy is ${policy}, not SCHED_FIFO`;
}
