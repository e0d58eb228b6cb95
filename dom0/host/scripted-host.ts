import type { XenstoreClient } from '../../src/xenstore/types.js';
import type { DomainFacts, HostFacts, XenHost } from './host.js';

/**
 * A scripted XenHost for tests and benchmarks: fixed domains whose allocation follows the
 * targets the manager writes, instantly or as scripted. It stands in for the hypervisor and the
 * guests' balloon drivers only — xenstore stays real. It is not the simulator (dom0/sim/).
 *
 * Targets reach it through `observeTarget` (wire it with `followTargetWrites`, which wraps the
 * manager's XenstoreClient so every `memory/target` write is seen as soon as it is acked).
 * Balloons move when `facts()` is called, like a real host seen between two polls: a shrink
 * frees memory, a grow takes it only up to Xen's free memory and the domain's maxmem.
 */

export type Balloon =
  /** Reaches the target at the next facts(). */
  | { kind: 'instant' }
  /** Never moves (a dead or absent balloon driver). */
  | { kind: 'stuck' }
  /** Moves at most `kibPerCall` toward the target per facts() call. */
  | { kind: 'rate'; kibPerCall: number };

export interface ScriptedDomain {
  domid: number;
  name: string;
  actualKib: number;
  maxmemKib: number;
  paused?: boolean;
  dying?: boolean;
  balloon?: Balloon;
}

export type HostCall =
  | { op: 'facts' }
  | { op: 'setMaxmem'; domid: number; kib: number }
  | { op: 'target'; domid: number; kib: number };

interface Dom extends Required<ScriptedDomain> {
  targetKib: number | null;
}

export class ScriptedHost implements XenHost {
  readonly totalKib: number;
  /** Memory Xen keeps for itself (never given to domains). */
  overheadKib: number;
  /** Every call in order; tests may push their own entries (e.g. xenstore writes) to interleave. */
  readonly calls: HostCall[] = [];
  private readonly doms = new Map<number, Dom>();
  private failures: Error[] = [];

  constructor(opts: { totalKib: number; overheadKib?: number; domains: ScriptedDomain[] }) {
    this.totalKib = opts.totalKib;
    this.overheadKib = opts.overheadKib ?? 0;
    for (const d of opts.domains) this.add(d);
  }

  add(d: ScriptedDomain): void {
    this.doms.set(d.domid, { paused: false, dying: false, balloon: { kind: 'instant' }, ...d, targetKib: null });
  }

  remove(domid: number): void {
    this.doms.delete(domid);
  }

  update(domid: number, patch: Partial<ScriptedDomain>): void {
    const d = this.doms.get(domid);
    if (!d) throw new Error(`scripted host: no domain ${domid}`);
    Object.assign(d, patch);
  }

  domain(domid: number): Readonly<Dom> | undefined {
    return this.doms.get(domid);
  }

  /** The next facts() call rejects with this error (to prove the loop survives). */
  failNextFacts(err: Error): void {
    this.failures.push(err);
  }

  freeKib(): number {
    let used = 0;
    for (const d of this.doms.values()) used += d.actualKib;
    return Math.max(0, this.totalKib - this.overheadKib - used);
  }

  observeTarget(domid: number, kib: number): void {
    this.calls.push({ op: 'target', domid, kib });
    const d = this.doms.get(domid);
    if (d) d.targetKib = kib;
  }

  async facts(): Promise<HostFacts> {
    this.calls.push({ op: 'facts' });
    const failure = this.failures.shift();
    if (failure) throw failure;
    this.moveBalloons();
    const domains: DomainFacts[] = [...this.doms.values()].map((d) => ({
      domid: d.domid,
      name: d.name,
      actualKib: d.actualKib,
      maxmemKib: d.maxmemKib,
      paused: d.paused,
      dying: d.dying,
    }));
    return { totalKib: this.totalKib, freeKib: this.freeKib(), domains };
  }

  async setMaxmem(domid: number, kib: number): Promise<void> {
    this.calls.push({ op: 'setMaxmem', domid, kib });
    const d = this.doms.get(domid);
    if (!d) throw new Error(`scripted host: no domain ${domid}`);
    d.maxmemKib = kib;
  }

  private moveBalloons(): void {
    // Shrinks first: a real host frees memory as soon as a balloon inflates.
    const doms = [...this.doms.values()].filter((d) => d.targetKib !== null && !d.paused && !d.dying);
    doms.sort((a, b) => (a.targetKib! - a.actualKib) - (b.targetKib! - b.actualKib));
    for (const d of doms) {
      const want = d.targetKib! - d.actualKib;
      if (want === 0 || d.balloon.kind === 'stuck') continue;
      const step = d.balloon.kind === 'rate' ? d.balloon.kibPerCall : Infinity;
      if (want < 0) {
        d.actualKib -= Math.min(-want, step);
      } else {
        const room = Math.min(this.freeKib(), d.maxmemKib - d.actualKib);
        d.actualKib += Math.max(0, Math.min(want, step, room));
      }
    }
  }
}

/** A domain's memory/target path; the domid is the first group. */
export const TARGET_PATH_RE = /^\/local\/domain\/(\d+)\/memory\/target$/;

/**
 * Wraps a XenstoreClient so that every acknowledged write of `/local/domain/<id>/memory/target`
 * is reported to `onTarget` — how a test host "sees" the balloon targets the manager sets.
 */
export function followTargetWrites(
  xs: XenstoreClient,
  onTarget: (domid: number, kib: number) => void,
): XenstoreClient {
  const write = async (path: string, value: string, tx?: number) => {
    await xs.write(path, value, tx);
    const m = TARGET_PATH_RE.exec(path);
    if (m && !tx && /^\d+$/.test(value)) onTarget(Number(m[1]), Number(value));
  };
  return proxyClient(xs, { write });
}

/**
 * `xs` with some methods replaced; the others are bound to `xs` once, not at every access
 * (the react benchmark's manager goes through this wrapper on every request).
 */
export function proxyClient(xs: XenstoreClient, overrides: Partial<XenstoreClient>): XenstoreClient {
  const bound = new Map<PropertyKey, unknown>(Object.entries(overrides));
  return new Proxy(xs, {
    get(target, prop, receiver) {
      const own = bound.get(prop);
      if (own !== undefined) return own;
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      const fn = v.bind(target);
      bound.set(prop, fn);
      return fn;
    },
  });
}
