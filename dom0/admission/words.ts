import type { AdmissionPlan, Refusal, ShutdownCandidate } from './plan.js';

/** Sentences a user can act on, from a plan or a refusal (pure; used by the CLI, logs and top). */

/** 1.2 GiB, 640 MiB, 12 KiB: one decimal at most, the unit a person reads fastest. */
export function fmtSize(kib: number): string {
  const k = Math.max(0, Math.round(kib));
  if (k >= 1024 * 1024) return `${trim((k / (1024 * 1024)).toFixed(1))} GiB`;
  if (k >= 1024) return `${Math.round(k / 1024)} MiB`;
  return `${k} KiB`;
}

function trim(s: string): string {
  return s.endsWith('.0') ? s.slice(0, -2) : s;
}

function names(list: readonly ShutdownCandidate[], joiner: 'and' | 'or'): string {
  const n = list.map((c) => c.name);
  if (n.length <= 1) return n.join('');
  return `${n.slice(0, -1).join(', ')} ${joiner} ${n[n.length - 1]}`;
}

/** What a user can do about a refusal, e.g. "shut down work or personal to free 1.2 GiB". */
export function adviceFor(r: Refusal): string {
  const missing = fmtSize(r.missingKib);
  if (r.shutdown === null) {
    return `even with every other VM shut down there would not be enough: ask for less memory (at most ${fmtSize(maxPossible(r))})`;
  }
  const list = r.shutdown.length === 1 && r.shutdownAlternatives.length > 1 ? names(r.shutdownAlternatives, 'or') : names(r.shutdown, 'and');
  return `shut down ${list} to free ${missing}`;
}

function maxPossible(r: Refusal): number {
  // Only reached when shutdown === null: available + reclaimable is all there is, plus what the
  // planner could not count (dom0, dying VMs); say what the host can give now.
  return r.availableKib + r.reclaimableKib;
}

/** One line: why the request was refused and what to do. */
export function refusalSentence(r: Refusal, forName?: string): string {
  const who = forName ? ` for ${forName}` : '';
  return (
    `cannot reserve ${fmtSize(r.neededKib)}${who}: ${fmtSize(r.availableKib)} free and ` +
    `${fmtSize(r.reclaimableKib)} reclaimable from running VMs without going below their floors ` +
    `(${fmtSize(r.missingKib)} short); ${adviceFor(r)}`
  );
}

/** One line for any plan. */
export function planSentence(p: AdmissionPlan, forName?: string): string {
  const who = forName ? ` for ${forName}` : '';
  switch (p.kind) {
    case 'fits-now':
      return `${fmtSize(p.neededKib)}${who} fits now (${fmtSize(p.availableKib)} free)`;
    case 'squeeze': {
      const givers = p.donors.filter((d) => d.giveKib > 0).map((d) => `${d.name} ${fmtSize(d.giveKib)}`);
      return `${fmtSize(p.neededKib)}${who} fits after freeing ${fmtSize(p.shortfallKib)} from ${givers.join(', ')}`;
    }
    case 'refused':
      return refusalSentence(p.refusal, forName);
  }
}
