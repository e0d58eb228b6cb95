import type { SortKey } from './sort.js';

/** Everything the viewer chose, kept apart from the data so rendering stays a pure function. */
export interface ViewOptions {
  sort: SortKey;
  /** The selected VM by domid, so the selection follows the VM when the order changes. */
  selected: number | null;
  detail: boolean;
  help: boolean;
  paused: boolean;
}

export const initialView: ViewOptions = { sort: 'memory', selected: null, detail: false, help: false, paused: false };

export type Key =
  | 'm' | 'p' | 'n' | 'up' | 'down' | 'pageup' | 'pagedown' | 'home' | 'end'
  | 'enter' | 'escape' | 'space' | 'help' | 'quit';

/** Maps a readline keypress to a view key; anything else is ignored. */
export function keyFromKeypress(str: string | undefined, key: { name?: string; ctrl?: boolean } | undefined): Key | null {
  if (key?.ctrl && key.name === 'c') return 'quit';
  switch (key?.name) {
    case 'up': case 'k': return 'up';
    case 'down': case 'j': return 'down';
    case 'pageup': return 'pageup';
    case 'pagedown': return 'pagedown';
    case 'home': return 'home';
    case 'end': return 'end';
    case 'return': case 'enter': return 'enter';
    case 'escape': return 'escape';
    case 'space': return 'space';
  }
  switch (str) {
    case 'm': case 'M': return 'm';
    case 'p': case 'P': return 'p';
    case 'n': case 'N': return 'n';
    case 'h': case '?': return 'help';
    case 'q': case 'Q': return 'quit';
    case ' ': return 'space';
  }
  return null;
}

/** Keeps the selection on a VM that exists; the first row when it is gone (or was never set). */
export function normalizeSelection(view: ViewOptions, order: readonly number[]): ViewOptions {
  if (view.selected !== null && order.includes(view.selected)) return view;
  return { ...view, selected: order[0] ?? null };
}

/**
 * The view after one key. `order` is the domids as currently displayed, `page` how many rows
 * the table shows. Returns null for quit.
 */
export function applyKey(view: ViewOptions, key: Key, order: readonly number[], page: number): ViewOptions | null {
  if (key === 'quit') return null;
  if (view.help) return key === 'help' || key === 'escape' || key === 'enter' ? { ...view, help: false } : view;
  const v = normalizeSelection(view, order);
  const at = v.selected === null ? -1 : order.indexOf(v.selected);
  const move = (to: number): ViewOptions =>
    order.length === 0 ? v : { ...v, selected: order[Math.max(0, Math.min(order.length - 1, to))]! };
  switch (key) {
    case 'm': return { ...v, sort: 'memory' };
    case 'p': return { ...v, sort: 'pressure' };
    case 'n': return { ...v, sort: 'name' };
    case 'up': return move(at - 1);
    case 'down': return move(at + 1);
    case 'pageup': return move(at - Math.max(1, page));
    case 'pagedown': return move(at + Math.max(1, page));
    case 'home': return move(0);
    case 'end': return move(order.length - 1);
    case 'enter': return { ...v, detail: !v.detail };
    case 'escape': return { ...v, detail: false };
    case 'space': return { ...v, paused: !v.paused };
    case 'help': return { ...v, help: true };
  }
}
