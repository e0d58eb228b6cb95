import v8 from 'node:v8';

/**
 * V8's young-generation collection between passes, not inside them.
 *
 * Each pass allocates (about 350 KiB at N = 100: the snapshot, the policy's per-VM objects
 * and reasons). V8 scavenges whenever its young generation fills up. A scavenge that falls
 * inside a pass holds back that pass's target writes, by about 2 ms and up to 20 ms on a
 * small dom0 (the react benchmark with --spin). So after each pass, if two more passes like the largest seen lately
 * could take the young generation past 75 % of its capacity, it is collected at once, while no
 * guest waits. Why 75 %: V8 does not wait for the space to be full; at 80 % it posts a
 * scavenge task, which runs at the next turn of the event loop, as likely as not in the middle
 * of a pass awaiting xenstore. The collections are about as many as before (each a little
 * earlier), at a better time.
 *
 * It needs V8's gc() (node --expose-gc; the systemd unit sets NODE_OPTIONS=--expose-gc).
 * Without it, nothing is done and V8 collects when it likes.
 */

export interface YoungGeneration {
  usedBytes: number;
  /** What can still be allocated before V8 must scavenge. */
  availableBytes: number;
}

/** Collect before a pass could take the young generation past this share of its capacity:
 *  below the 80 % at which V8 posts its own scavenge task (--scavenge-task-trigger). */
export const COLLECT_BEFORE_SHARE = 0.75;

/** How many recent passes' allocations the estimate of "one pass" looks back on. */
const PASSES_REMEMBERED = 16;

/**
 * Learns how much one pass allocates from the young generation's growth between the ends of
 * consecutive passes (growth that a collection interrupted is not counted), and says when two
 * more passes would take it past COLLECT_BEFORE_SHARE. Pure: the caller feeds it readings.
 */
export class PassAllocation {
  private lastUsed: number | null = null;
  private readonly recent: number[] = [];

  /** A reading at the end of a pass. Returns true if the young generation should be collected now. */
  afterPass(gen: YoungGeneration): boolean {
    if (this.lastUsed !== null && gen.usedBytes >= this.lastUsed) {
      this.recent.push(gen.usedBytes - this.lastUsed);
      if (this.recent.length > PASSES_REMEMBERED) this.recent.shift();
    }
    this.lastUsed = gen.usedBytes;
    const pass = this.largestPassBytes();
    const capacity = gen.usedBytes + gen.availableBytes;
    return pass > 0 && gen.usedBytes + 2 * pass > COLLECT_BEFORE_SHARE * capacity;
  }

  /** The reading right after a collection: the next growth is measured from it. */
  collected(gen: YoungGeneration): void {
    this.lastUsed = gen.usedBytes;
  }

  largestPassBytes(): number {
    return this.recent.length === 0 ? 0 : Math.max(...this.recent);
  }
}

/** V8's new space now. */
export function youngGeneration(): YoungGeneration {
  const s = v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space');
  return { usedBytes: s?.space_used_size ?? 0, availableBytes: s?.space_available_size ?? Infinity };
}

/** What node --expose-gc puts on globalThis; V8 takes `{ type: 'minor' }` for a scavenge. */
export type GcFunction = (opts?: { type?: 'minor' | 'major' }) => void;

/** V8's gc() if node was started with --expose-gc, else null. */
export function exposedGc(): GcFunction | null {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as GcFunction) : null;
}

export interface PassSource {
  on(event: 'pass', listener: () => void): unknown;
  off(event: 'pass', listener: () => void): unknown;
}

export interface GcBetweenPassesDeps {
  gc: GcFunction;
  young?: () => YoungGeneration;
  /** When to look once a pass has ended. Default: at once, in the 'pass' event, which the
   *  manager emits before it can start another pass (a collection deferred to a later turn of
   *  the event loop could fall inside the next pass's wait for xenstore). */
  defer?: (fn: () => void) => void;
}

/** Collects the young generation after a pass when needed (see above). Returns stop(). */
export function gcBetweenPasses(source: PassSource, deps: GcBetweenPassesDeps): { stop(): void; collections(): number } {
  const young = deps.young ?? youngGeneration;
  const defer = deps.defer ?? ((fn) => fn());
  const alloc = new PassAllocation();
  let collections = 0;
  let stopped = false;
  const onPass = (): void => {
    defer(() => {
      if (stopped || !alloc.afterPass(young())) return;
      deps.gc({ type: 'minor' });
      collections++;
      alloc.collected(young());
    });
  };
  source.on('pass', onPass);
  return {
    stop: () => {
      stopped = true;
      source.off('pass', onPass);
    },
    collections: () => collections,
  };
}

/** The collector as the service runs it: on when the config wants it and node exposes gc(). */
export function startGcBetweenPasses(source: PassSource, enabled: boolean): { stop(): void; collections(): number; status: string } {
  const gc = enabled ? exposedGc() : null;
  if (!gc) return { stop: () => {}, collections: () => 0, status: enabled ? 'off: node runs without --expose-gc' : 'off: config' };
  return { ...gcBetweenPasses(source, { gc }), status: 'on' };
}
