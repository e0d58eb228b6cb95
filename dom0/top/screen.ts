import ansiEscapes from 'ansi-escapes';
import readline from 'node:readline';

/**
 * The terminal side effects of `xmem top`, and nothing else: alternate screen, hidden cursor,
 * raw keys, resize events, and drawing whole frames. Restores the terminal on every exit path.
 */
export class Screen {
  private active = false;
  private readonly restoreOnExit = (): void => this.leave();

  constructor(
    private readonly input: NodeJS.ReadStream,
    private readonly output: NodeJS.WriteStream,
  ) {}

  size(): { cols: number; rows: number } {
    return { cols: this.output.columns ?? 80, rows: this.output.rows ?? 24 };
  }

  enter(onKey: (str: string | undefined, key: readline.Key | undefined) => void, onResize: () => void): void {
    this.active = true;
    readline.emitKeypressEvents(this.input);
    if (this.input.isTTY) this.input.setRawMode(true);
    this.input.on('keypress', onKey);
    this.input.resume();
    this.output.on('resize', onResize);
    process.once('exit', this.restoreOnExit);
    this.output.write(ansiEscapes.enterAlternativeScreen + ansiEscapes.cursorHide + ansiEscapes.clearViewport);
  }

  /**
   * Draws a frame of exactly `rows` lines (the renderer guarantees it, so nothing below needs
   * erasing). Each line is drawn on a cleared row: erasing after a full-width line would eat its last
   * column (the cursor sits there), so clear first, then write.
   */
  draw(lines: readonly string[]): void {
    if (!this.active) return;
    let out = '';
    lines.forEach((line, i) => {
      out += ansiEscapes.cursorTo(0, i) + ansiEscapes.eraseLine + line;
    });
    this.output.write(out);
  }

  leave(): void {
    if (!this.active) return;
    this.active = false;
    process.off('exit', this.restoreOnExit);
    this.input.removeAllListeners('keypress');
    if (this.input.isTTY) this.input.setRawMode(false);
    this.input.pause();
    this.output.write(ansiEscapes.cursorShow + ansiEscapes.exitAlternativeScreen);
  }
}
