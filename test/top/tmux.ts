import { execFileSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';

const run = promisify(execFile);
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** null when tmux is usable; otherwise why the real-terminal tests cannot run. */
export function tmuxSkipReason(): string | null {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'pipe' });
    return null;
  } catch {
    return 'tmux is not installed (apt-get install tmux)';
  }
}

/**
 * A private tmux server (its own socket in the test's temp dir, and its own config), so tests never touch a user's
 * tmux and the pane is exactly the size asked for (no status line).
 */
export class Tmux {
  private readonly socket: string;
  private readonly conf: string;

  constructor(tmpDir: string) {
    this.socket = path.join(tmpDir, 'tmux.sock');
    this.conf = path.join(tmpDir, 'tmux.conf');
    writeFileSync(this.conf, 'set -g status off\nset -g default-terminal "tmux-256color"\n');
  }

  async tmux(...args: string[]): Promise<string> {
    const { stdout } = await run('tmux', ['-S', this.socket, '-f', this.conf, ...args]);
    return stdout;
  }

  async start(session: string, cols: number, rows: number, command: string, env: Record<string, string> = {}): Promise<void> {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await this.tmux('new-session', '-d', '-s', session, '-x', String(cols), '-y', String(rows), '-c', repoRoot, ...envArgs, command);
  }

  /** The screen as text (no escapes) or with SGR escapes (-e), one string per row. */
  async capture(session: string, escapes = false): Promise<string[]> {
    const out = await this.tmux('capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', session);
    return out.replace(/\n$/, '').split('\n');
  }

  async keys(session: string, ...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', session, ...keys);
  }

  async display(session: string, format: string): Promise<string> {
    return (await this.tmux('display-message', '-p', '-t', session, format)).trim();
  }

  /** Polls the screen until `ok` holds; the last screen is in the error so a failure explains itself. */
  async waitFor(session: string, what: string, ok: (screen: string[]) => boolean, timeoutMs = 15_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let screen: string[] = [];
    while (Date.now() < deadline) {
      screen = await this.capture(session);
      if (ok(screen)) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}; screen was:\n${screen.join('\n')}`);
  }

  async kill(): Promise<void> {
    await this.tmux('kill-server').catch(() => undefined);
  }
}
