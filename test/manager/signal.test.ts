import { describe, expect, it } from 'vitest';
import { encodeGuestReport } from '../../src/schemas/report.js';
import { report } from './helpers.js';
import { NO_KEYS, agedReading, readSignal, type RawGuestKeys } from '../../dom0/manager/signal.js';


const opts = { staleAfterMs: 30_000 };
const raw = (over: Partial<RawGuestKeys>): RawGuestKeys => ({ ...NO_KEYS, ...over });

describe('readSignal', () => {
  it('accepts a valid xmem report with its age', () => {
    const r = readSignal(raw({ report: encodeGuestReport(report()) }), undefined, 5000, null, opts);
    expect(r.status).toBe('ok');
    expect(r.signal.kind).toBe('xmem');
  });

  it('missing without any key, and an empty (just granted) Qubes key is missing too', () => {
    expect(readSignal(NO_KEYS, undefined, 0, null, opts).status).toBe('missing');
    expect(readSignal(raw({ qubes: '' }), undefined, 0, null, opts).status).toBe('missing');
  });

  it.each([
    ['garbage', 'not json at all'],
    ['oversized', JSON.stringify({ ...report(), pad: 'x'.repeat(2000) })],
    ['wrong type', encodeGuestReport(report()).replace('"total":1000000', '"total":"lots"')],
    ['extra key', JSON.stringify({ ...report(), evil: 1 })],
    ['negative', encodeGuestReport(report({ free: -1 }))],
  ])('a %s report is bad, never a throw, and the detail does not echo guest bytes', (_, text) => {
    const r = readSignal(raw({ report: text }), undefined, 0, null, opts);
    expect(r.status).toBe('bad');
    expect(r.signal.kind).toBe('none');
    expect(r.detail).not.toContain('xxxx');
    expect(r.detail).not.toContain('lots');
  });

  it('goes stale when seq does not move for staleAfterMs after its arrival, fresh again on a new seq', () => {
    const first = readSignal(raw({ report: encodeGuestReport(report({ seq: 1 })) }), undefined, 1000, 1000, opts);
    const same = readSignal(raw({ report: encodeGuestReport(report({ seq: 1 })) }), first.track, 20_000, 19_000, opts);
    expect(same.status).toBe('ok');
    const late = readSignal(raw({ report: encodeGuestReport(report({ seq: 1 })) }), same.track, 31_001, 19_000, opts);
    expect(late.status).toBe('stale');
    // The new report's age counts from its watch arrival, not from when the pass read it.
    const next = readSignal(raw({ report: encodeGuestReport(report({ seq: 2 })) }), late.track, 32_000, 31_500, opts);
    expect(next.status).toBe('ok');
    expect(next.signal.kind === 'xmem' && next.signal.ageMs).toBe(500);
  });

  it('an agent restart (seq back to 0, new uptime) counts as a new report', () => {
    const a = readSignal(raw({ report: encodeGuestReport(report({ seq: 50, up: 100_000 })) }), undefined, 0, 0, opts);
    const b = readSignal(raw({ report: encodeGuestReport(report({ seq: 0, up: 2_000 })) }), a.track, 40_000, 40_000, opts);
    expect(b.status).toBe('ok');
  });

  it('reads Qubes meminfo digits and rejects anything else', () => {
    const ok = readSignal(raw({ qubes: '409600' }), undefined, 0, null, opts);
    expect(ok.signal).toMatchObject({ kind: 'qubes', usedKib: 409600 });
    for (const bad of ['a4096', '4096a', '4096 1024', '4096\n1024', '9'.repeat(16)]) {
      expect(readSignal(raw({ qubes: bad }), undefined, 0, null, opts).status).toBe('bad');
    }
  });

  it('never lets an unchanged Qubes value go stale (meminfo-writer writes on change only)', () => {
    const a = readSignal(raw({ qubes: '409600' }), undefined, 0, 0, opts);
    const b = readSignal(raw({ qubes: '409600' }), a.track, 3_600_000, 0, opts);
    expect(b.status).toBe('ok');
  });

  it('reads XAPI meminfo_free/total and refuses inconsistent values', () => {
    expect(readSignal(raw({ xapiFree: '1000', xapiTotal: '4000' }), undefined, 0, null, opts).signal)
      .toMatchObject({ kind: 'xapi', freeKib: 1000, totalKib: 4000 });
    expect(readSignal(raw({ xapiFree: '5000', xapiTotal: '4000' }), undefined, 0, null, opts).status).toBe('bad');
    expect(readSignal(raw({ xapiFree: '1000' }), undefined, 0, null, opts).status).toBe('bad');
  });

  it('remembers the allocation a XAPI value arrived at, until the value changes', () => {
    const at = (kib: number) => ({ ...opts, allocationKib: kib });
    const a = readSignal(raw({ xapiFree: '1000', xapiTotal: '4000' }), undefined, 0, 0, at(4096));
    expect(a.signal).toMatchObject({ kind: 'xapi', allocKib: 4096 });
    // The VM grew; the agent has not rewritten its numbers: the gap is still measured at 4096.
    const b = readSignal(raw({ xapiFree: '1000', xapiTotal: '4000' }), a.track, 1000, 0, at(8192));
    expect(b.signal).toMatchObject({ kind: 'xapi', allocKib: 4096 });
    expect(agedReading(b, 2000).signal).toMatchObject({ kind: 'xapi', allocKib: 4096, ageMs: 2000 });
    const c = readSignal(raw({ xapiFree: '1000', xapiTotal: '8000' }), b.track, 3000, 3000, at(8192));
    expect(c.signal).toMatchObject({ kind: 'xapi', totalKib: 8000, allocKib: 8192 });
  });

  it('prefers the xmem report over Qubes meminfo, and a bad report does not fall back', () => {
    expect(readSignal(raw({ report: encodeGuestReport(report()), qubes: '1' }), undefined, 0, null, opts).signal.kind).toBe('xmem');
    expect(readSignal(raw({ report: '{', qubes: '1' }), undefined, 0, null, opts).status).toBe('bad');
  });
});
