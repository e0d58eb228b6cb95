import type { XenstoreClient } from '../../src/xenstore/types.js';
import type { VmHistory } from '../../src/policy/types.js';
import { keys } from './keys.js';
import type { ProgressTrack } from './progress.js';
import { NO_KEYS, type RawGuestKeys, type SignalReading, type SignalStatus, type SignalTrack } from './signal.js';

/** Everything the manager keeps about one live domain. */
export interface DomainRecord {
  domid: number;
  name: string;
  targetKib: number | null;
  /** The target in force was written by this process (only then is progress tracked). */
  ownTarget: boolean;
  /** Re-read memory/target at the next pass (the sweep: an admin may have set it by hand). */
  refreshTarget: boolean;
  staticMaxKib: number | null;
  raw: RawGuestKeys;
  /** Guest keys to read at the next pass: those whose watch fired; all after a sweep. */
  dirty: Set<GuestKey>;
  /** Keys were re-read since the last signal reading (else only the report's age moves). */
  reread: boolean;
  /** When a watch on the guest's keys last fired (manager clock). */
  arrivedMs: number | null;
  signalTrack: SignalTrack | undefined;
  reading: SignalReading | null;
  status: SignalStatus | null;
  progress: ProgressTrack | undefined;
  stuck: boolean;
  /** A stuck grower held at this allocation (target and maxmem): stuck until it moves from
   *  it, or until the next sweep retries it. */
  clampKib?: number;
  history: VmHistory | undefined;
  reason: string;
  reasonAtMs: number | null;
  unwatch: (() => Promise<void>)[];
}

const DIGITS = /^[0-9]{1,15}$/;

function kibOrNull(v: string | null): number | null {
  return v !== null && DIGITS.test(v) ? Number(v) : null;
}

/**
 * Sets a new domain up: reads its target and ceiling, grants the Qubes keys, watches the
 * guest's report keys. Throws if the domain vanished meanwhile (the next pass retries).
 */
export async function setupDomain(
  xs: XenstoreClient,
  domid: number,
  fallbackName: string,
  onGuestWrite: (domid: number, key: GuestKey) => void,
): Promise<DomainRecord> {
  const k = keys(domid);
  const [name, target, staticMax, hotplugMax, saved] = await Promise.all([
    xs.tryRead(`${k.home}/name`),
    xs.tryRead(k.target),
    xs.tryRead(k.staticMax),
    xs.tryRead(k.hotplugMax),
    xs.tryRead(k.xmemStaticMax),
  ]);
  // `xl mem-max` (which xmem calls) rewrites static-max with the new ceiling on Xen >= 4.17, so
  // the ORIGINAL static-max is saved once, beside it, and preferred on every later start.
  const original = kibOrNull(saved) ?? kibOrNull(staticMax);
  if (saved === null && original !== null) await xs.write(k.xmemStaticMax, String(original));
  if (domid !== 0) await grantQubesKeys(xs, domid);

  const rec: DomainRecord = {
    domid,
    name: name !== null && name.length > 0 && name.length <= 128 ? name : fallbackName,
    targetKib: kibOrNull(target),
    ownTarget: false,
    refreshTarget: false,
    staticMaxKib: kibOrNull(hotplugMax) ?? original,
    raw: NO_KEYS,
    dirty: new Set(ALL_GUEST_KEYS),
    reread: true,
    arrivedMs: null,
    signalTrack: undefined,
    reading: null,
    status: null,
    progress: undefined,
    stuck: false,
    history: undefined,
    reason: '',
    reasonAtMs: null,
    unwatch: [],
  };
  for (const [key, path] of [['report', k.report], ['qubes', k.qubes], ['xapi', k.xapiFree]] as const) {
    rec.unwatch.push(await xs.watch(path, () => onGuestWrite(domid, key)));
  }
  return rec;
}

/**
 * Creates `memory/meminfo` and `memory/swapinfo` owned by dom0 and writable by the guest
 * (`n0 b<domid>`): `memory/` is dom0-owned and read-only for guests, so stock Qubes
 * meminfo-writer (which exits unless both exist, anchors §1.2) and the xmem agent's Qubes
 * publisher could not create them. Existing keys are left alone.
 */
export async function grantQubesKeys(xs: XenstoreClient, domid: number): Promise<void> {
  const k = keys(domid);
  for (const path of [k.qubes, k.qubesSwap]) {
    if ((await xs.tryRead(path)) !== null) continue;
    await xs.mkdir(path);
    await xs.setPerms(path, [{ domid: 0, access: 'n' }, { domid, access: 'b' }]);
  }
}

/** Reads memory/target as found (null when absent or not digits). */
export async function readTarget(xs: XenstoreClient, domid: number): Promise<number | null> {
  return kibOrNull(await xs.tryRead(keys(domid).target));
}

/** The guest-written sources, each read again only when its watch fires (or on a sweep). */
export type GuestKey = 'report' | 'qubes' | 'xapi';
export const ALL_GUEST_KEYS: readonly GuestKey[] = ['report', 'qubes', 'xapi'];

/**
 * Re-reads the given guest-written keys into `prev` (values are bounded by xenstored's
 * 2048-byte guest quota; the parsers bound them again).
 */
export async function readGuestKeys(xs: XenstoreClient, domid: number, which: Set<GuestKey>, prev: RawGuestKeys): Promise<RawGuestKeys> {
  const k = keys(domid);
  const [report, qubes, xapiFree, xapiTotal] = await Promise.all([
    which.has('report') ? xs.tryRead(k.report) : prev.report,
    which.has('qubes') ? xs.tryRead(k.qubes) : prev.qubes,
    which.has('xapi') ? xs.tryRead(k.xapiFree) : prev.xapiFree,
    which.has('xapi') ? xs.tryRead(k.xapiTotal) : prev.xapiTotal,
  ]);
  return { report, qubes, xapiFree, xapiTotal };
}

export async function teardownDomain(rec: DomainRecord): Promise<void> {
  for (const unwatch of rec.unwatch) await unwatch().catch(() => {});
  rec.unwatch = [];
}
