import type { GuestSignal } from '../../src/policy/types.js';
import { parseGuestReport, parseQubesMeminfo, type GuestReport, type ParseResult } from '../../src/schemas/report.js';

/**
 * Turns the raw, untrusted strings a guest left in xenstore into one GuestSignal. Pure.
 * Priority: the xmem agent's report, else Qubes' meminfo-writer, else a XAPI agent.
 * Only the xmem report carries a sequence number, so only it can go stale: the others are
 * written on change (meminfo-writer) or every couple of minutes, and an unchanged value from
 * them is not evidence of a dead guest.
 */

export type SignalStatus = 'ok' | 'bad' | 'stale' | 'missing';

export interface RawGuestKeys {
  report: string | null;
  qubes: string | null;
  xapiFree: string | null;
  xapiTotal: string | null;
}

export const NO_KEYS: RawGuestKeys = { report: null, qubes: null, xapiFree: null, xapiTotal: null };

/** What we remember about a VM's reports between passes. */
export interface SignalTrack {
  /** Last accepted xmem report's (seq, up), to tell a new report from a replay. */
  seq: number | null;
  up: number | null;
  /** When the current report (or value) arrived, ms on the manager's clock. */
  sinceMs: number;
  /** The raw value last accepted, for the agent-less sources. */
  raw: string | null;
  /** The VM's Xen allocation when that value arrived (XAPI's MemTotal is measured against it). */
  allocKib?: number | null;
  /** The last report string and its parse: a report is parsed once, not once per pass. */
  parsed?: { text: string; result: ParseResult<GuestReport> };
}

export interface SignalReading {
  signal: GuestSignal;
  status: SignalStatus;
  /** One short, log-safe sentence (never echoes guest bytes). */
  detail: string;
  track: SignalTrack;
}

export interface SignalOptions {
  /** An xmem report whose seq has not moved for this long is stale. */
  staleAfterMs: number;
  /** The VM's Xen allocation now (null: unknown), remembered with a new XAPI value. */
  allocationKib?: number | null;
}

const XAPI_RE = /^[0-9]{1,15}$/;

/**
 * @param arrivedMs when the watch event for this VM's keys last fired (null: no event seen),
 *   so a report's age counts from its arrival, not from when the pass got round to it.
 */
export function readSignal(
  raw: RawGuestKeys,
  prev: SignalTrack | undefined,
  nowMs: number,
  arrivedMs: number | null,
  opts: SignalOptions,
): SignalReading {
  const arrival = Math.min(nowMs, arrivedMs ?? nowMs);
  const none = (status: SignalStatus, detail: string, track: SignalTrack = prev ?? emptyTrack(nowMs)): SignalReading => ({
    signal: { kind: 'none', why: detail },
    status,
    detail,
    track,
  });

  if (raw.report !== null && raw.report !== '') {
    const text = raw.report;
    const parsed = prev?.parsed?.text === text ? prev.parsed : { text, result: parseGuestReport(text) };
    const r = parsed.result;
    if (!r.ok) return none('bad', r.error, prev ? { ...prev, parsed } : { ...emptyTrack(nowMs), parsed });
    const { seq, up } = r.value;
    const isNew = !prev || prev.seq !== seq || prev.up !== up;
    const track: SignalTrack = isNew ? { seq, up, sinceMs: prev ? arrival : nowMs, raw: null, parsed } : prev.parsed === parsed ? prev : { ...prev, parsed };
    const ageMs = Math.max(0, nowMs - track.sinceMs);
    if (ageMs > opts.staleAfterMs) return none('stale', `report seq ${seq} unchanged for ${Math.round(ageMs / 1000)} s`, track);
    return { signal: { kind: 'xmem', report: r.value, ageMs }, status: 'ok', detail: 'xmem report', track };
  }

  if (raw.qubes !== null && raw.qubes !== '') {
    const r = parseQubesMeminfo(raw.qubes);
    if (!r.ok) return none('bad', r.error);
    const track = sameRaw(prev, raw.qubes) ? prev! : { seq: null, up: null, sinceMs: arrival, raw: raw.qubes };
    return { signal: { kind: 'qubes', usedKib: r.value, ageMs: nowMs - track.sinceMs }, status: 'ok', detail: 'qubes meminfo', track };
  }

  if (raw.xapiFree !== null && raw.xapiFree !== '') {
    if (!XAPI_RE.test(raw.xapiFree) || raw.xapiTotal === null || !XAPI_RE.test(raw.xapiTotal)) {
      return none('bad', 'data/meminfo_free or data/meminfo_total is not 1-15 decimal digits');
    }
    const freeKib = Number(raw.xapiFree);
    const totalKib = Number(raw.xapiTotal);
    if (freeKib > totalKib) return none('bad', 'data/meminfo_free exceeds data/meminfo_total');
    const key = `${raw.xapiFree}/${raw.xapiTotal}`;
    const track = sameRaw(prev, key) ? prev! : { seq: null, up: null, sinceMs: arrival, raw: key, allocKib: opts.allocationKib ?? null };
    const allocKib = track.allocKib ?? null;
    return { signal: { kind: 'xapi', freeKib, totalKib, allocKib, ageMs: nowMs - track.sinceMs }, status: 'ok', detail: 'xapi meminfo', track };
  }

  return none('missing', 'no guest report');
}

function emptyTrack(nowMs: number): SignalTrack {
  return { seq: null, up: null, sinceMs: nowMs, raw: null };
}

function sameRaw(prev: SignalTrack | undefined, raw: string): boolean {
  return prev !== undefined && prev.seq === null && prev.raw === raw;
}

/**
 * The same reading with its report's age moved to `nowMs` (a pass where only time passed for
 * this VM). Built field by field, not spread: it runs for every VM on every pass.
 */
export function agedReading(prev: SignalReading, nowMs: number): SignalReading {
  const ageMs = Math.max(0, nowMs - prev.track.sinceMs);
  const s = prev.signal;
  const signal: GuestSignal = s.kind === 'xmem' ? { kind: 'xmem', report: s.report, ageMs }
    : s.kind === 'qubes' ? { kind: 'qubes', usedKib: s.usedKib, ageMs }
      : s.kind === 'xapi' ? { kind: 'xapi', freeKib: s.freeKib, totalKib: s.totalKib, allocKib: s.allocKib, ageMs }
        : s;
  return { signal, status: prev.status, detail: prev.detail, track: prev.track };
}
