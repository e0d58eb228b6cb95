import { describe, expect, it } from 'vitest';
import { applyKey, initialView, keyFromKeypress, normalizeSelection, type ViewOptions } from '../../dom0/top/view.js';

const order = [0, 5, 3, 7];
const at = (selected: number | null, over: Partial<ViewOptions> = {}): ViewOptions => ({ ...initialView, selected, ...over });

describe('view keys', () => {
  it('maps keypresses, ignoring everything else', () => {
    expect(keyFromKeypress('m', { name: 'm' })).toBe('m');
    expect(keyFromKeypress('P', { name: 'p', shift: true } as never)).toBe('p');
    expect(keyFromKeypress(undefined, { name: 'up' })).toBe('up');
    expect(keyFromKeypress('j', { name: 'j' })).toBe('down');
    expect(keyFromKeypress('\r', { name: 'return' })).toBe('enter');
    expect(keyFromKeypress(' ', { name: 'space' })).toBe('space');
    expect(keyFromKeypress('?', undefined)).toBe('help');
    expect(keyFromKeypress('\x03', { name: 'c', ctrl: true })).toBe('quit');
    expect(keyFromKeypress('x', { name: 'x' })).toBeNull();
  });

  it('sort keys change only the sort', () => {
    expect(applyKey(at(5), 'p', order, 10)).toEqual(at(5, { sort: 'pressure' }));
    expect(applyKey(at(5, { sort: 'pressure' }), 'n', order, 10)!.sort).toBe('name');
    expect(applyKey(at(5, { sort: 'name' }), 'm', order, 10)!.sort).toBe('memory');
  });

  it('moves the selection within the displayed order and clamps at the ends', () => {
    expect(applyKey(at(5), 'down', order, 10)!.selected).toBe(3);
    expect(applyKey(at(5), 'up', order, 10)!.selected).toBe(0);
    expect(applyKey(at(0), 'up', order, 10)!.selected).toBe(0);
    expect(applyKey(at(7), 'down', order, 10)!.selected).toBe(7);
    expect(applyKey(at(0), 'pagedown', order, 2)!.selected).toBe(3);
    expect(applyKey(at(0), 'end', order, 2)!.selected).toBe(7);
    expect(applyKey(at(null), 'down', order, 2)!.selected).toBe(5);
    expect(applyKey(at(null), 'down', [], 2)!.selected).toBeNull();
  });

  it('Enter toggles the detail pane, Esc closes it, space pauses, q quits', () => {
    expect(applyKey(at(3), 'enter', order, 10)!.detail).toBe(true);
    expect(applyKey(at(3, { detail: true }), 'enter', order, 10)!.detail).toBe(false);
    expect(applyKey(at(3, { detail: true }), 'escape', order, 10)!.detail).toBe(false);
    expect(applyKey(at(3), 'space', order, 10)!.paused).toBe(true);
    expect(applyKey(at(3, { paused: true }), 'space', order, 10)!.paused).toBe(false);
    expect(applyKey(at(3), 'quit', order, 10)).toBeNull();
  });

  it('help swallows other keys until closed', () => {
    const help = applyKey(at(3), 'help', order, 10)!;
    expect(help.help).toBe(true);
    expect(applyKey(help, 'down', order, 10)).toBe(help);
    expect(applyKey(help, 'escape', order, 10)!.help).toBe(false);
    expect(applyKey(help, 'quit', order, 10)).toBeNull();
  });

  it('keeps the selection on its VM, or falls back to the first row when it is gone', () => {
    expect(normalizeSelection(at(3), [3, 0]).selected).toBe(3);
    expect(normalizeSelection(at(9), [3, 0]).selected).toBe(3);
    expect(normalizeSelection(at(9), []).selected).toBeNull();
  });
});
