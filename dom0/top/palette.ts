import pc from 'picocolors';

export type Style = (text: string) => string;

/**
 * The few styles the view uses, each for one meaning: red = something is wrong (stuck, below
 * floor, bad report, disconnected), yellow = pressure or stale data, dim = not running,
 * bold/inverse = structure (headers, selection). Disabled, every style is the identity.
 */
export interface Palette {
  alarm: Style;
  warn: Style;
  quiet: Style;
  header: Style;
  selected: Style;
  bannerAlarm: Style;
  bannerWarn: Style;
}

/**
 * `colours` for meaning, `attributes` (bold, inverse) for structure: NO_COLOR turns off the
 * first only, so the selected row stays visible; a pipe gets neither.
 */
export function palette(colours: boolean, attributes = colours): Palette {
  const c = pc.createColors(colours);
  const a = pc.createColors(attributes);
  return {
    alarm: c.red,
    warn: c.yellow,
    quiet: c.dim,
    header: (s) => a.bold(a.inverse(s)),
    selected: a.inverse,
    bannerAlarm: colours ? (s) => c.bold(c.bgRed(c.white(s))) : a.inverse,
    bannerWarn: colours ? (s) => c.black(c.bgYellow(s)) : a.inverse,
  };
}

/** Styles when the output is a terminal that wants them (NO_COLOR, FORCE_COLOR respected). */
export function paletteFor(stream: NodeJS.WriteStream): Palette {
  const forced = process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0';
  const terminal = forced || (stream.isTTY === true && process.env.TERM !== 'dumb');
  return palette(terminal && !('NO_COLOR' in process.env), terminal);
}
