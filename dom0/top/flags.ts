import type { VmFlag } from '../../src/schemas/state.js';

/** One letter per flag for the narrow FLAGS column; the detail pane and help spell them out. */
export const FLAG_LETTERS: Record<VmFlag, string> = {
  stuck: 'S',
  pressure: '!',
  'bad-report': 'B',
  stale: 'O',
  'no-agent': 'N',
  paused: 'P',
  dying: 'D',
  pinned: 'F',
  dom0: '0',
};

export const FLAG_MEANINGS: Record<VmFlag, string> = {
  stuck: 'balloon is not reaching its target',
  pressure: 'guest reports memory pressure (PSI)',
  'bad-report': 'last guest report was rejected',
  stale: 'guest report is old',
  'no-agent': 'no xmem agent: held, not balanced',
  paused: 'VM is paused',
  dying: 'VM is shutting down',
  pinned: 'fixed size by configuration',
  dom0: 'the control domain',
};

/** Letters in a fixed order (most alarming first) so the column reads the same on every row. */
const ORDER = Object.keys(FLAG_LETTERS) as VmFlag[];

export function flagLetters(flags: readonly VmFlag[]): string {
  return ORDER.filter((f) => flags.includes(f))
    .map((f) => FLAG_LETTERS[f])
    .join('');
}
