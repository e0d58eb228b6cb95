/**
 * The agent logs plain lines to stderr (journald adds time and unit): no logging library in the
 * guest, where every MiB counts. Recurring conditions print once per change of state, never once
 * per tick.
 */
export type LogLine = (line: string) => void;

export const stderrLine: LogLine = (line) => {
  process.stderr.write(`xmem-agent: ${line}\n`);
};

export class StateLog {
  private readonly states = new Map<string, string>();

  constructor(readonly out: LogLine) {}

  /** Logs `message` only when `topic` enters a state different from its last one. */
  set(topic: string, state: string, message: string): void {
    if (this.states.get(topic) === state) return;
    this.states.set(topic, state);
    this.out(message);
  }

  /** Enters `state` silently the first time; logs `message` only when leaving another state. */
  ok(topic: string, state: string, message: string): void {
    const prev = this.states.get(topic);
    this.states.set(topic, state);
    if (prev !== undefined && prev !== state) this.out(message);
  }

  get(topic: string): string | undefined {
    return this.states.get(topic);
  }
}
