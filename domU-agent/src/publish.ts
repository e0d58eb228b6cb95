import { QUBES_MEMINFO_KEY } from '../../src/schemas/report-wire.js';
import type { XenstoreClient } from '../../src/xenstore/types.js';
import { errnoOf } from './procfile.js';
import type { StateLog } from './log.js';
import { usedChanged, type MemView } from './schedule.js';

type QubesState = 'unknown' | 'absent' | 'denied' | 'active';

/**
 * Qubes' `memory/meminfo` (used KiB as digits), so a stock qmemman can balance this guest too.
 * dom0 creates the key and grants it to the guest only for VMs it balances; the guest cannot
 * create it. Whether it exists and is writable is learnt by trying once; a missing or denied
 * key is probed again only when `reprobe` is set (heartbeats), never every tick. Written with
 * meminfo-writer's own change rule, since each write wakes qmemman for a rebalance.
 */
export class QubesKey {
  private state: QubesState = 'unknown';
  private last: Pick<MemView, 'usedKib'> | null = null;

  constructor(
    private readonly log: StateLog,
    private readonly thresholdKib: number,
  ) {}

  get status(): QubesState {
    return this.state;
  }

  async publish(xs: XenstoreClient, mem: MemView, reprobe: boolean): Promise<void> {
    if (this.state === 'absent' || this.state === 'denied') {
      if (!reprobe) return;
      this.state = 'unknown';
    }
    if (this.state === 'unknown') {
      try {
        if ((await xs.tryRead(QUBES_MEMINFO_KEY)) === null) return this.enter('absent', `${QUBES_MEMINFO_KEY} absent: not writing the Qubes number`);
      } catch (err) {
        return this.failed(err);
      }
      this.last = null;
    }
    if (this.state === 'active' && this.last && !usedChanged(this.last, mem, this.thresholdKib)) return;
    try {
      await xs.write(QUBES_MEMINFO_KEY, String(Math.max(0, Math.round(mem.usedKib))));
    } catch (err) {
      return this.failed(err);
    }
    this.last = { usedKib: mem.usedKib };
    this.enter('active', `${QUBES_MEMINFO_KEY} writable: also writing the Qubes used number`);
  }

  private failed(err: unknown): void {
    const errno = errnoOf(err);
    if (errno === 'EACCES' || errno === 'EPERM') {
      this.enter('denied', `${QUBES_MEMINFO_KEY} not writable (${errno}): not writing the Qubes number`);
      return;
    }
    // Transient (EAGAIN, ENOSPC, connection): probe again on the next report.
    this.state = 'unknown';
    this.log.set('qubes', `error:${errno}`, `${QUBES_MEMINFO_KEY} write failed: ${errno}; will retry`);
  }

  private enter(state: QubesState, message: string): void {
    this.state = state;
    this.log.set('qubes', state, message);
  }
}
