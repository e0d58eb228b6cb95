import { parseQubesSize } from './qubes-size.js';

/**
 * Reads Qubes' /etc/qubes/qmemman.conf into xmem policy keys, so `policy: qmemman` behaves as
 * qmemmand would with the same file:
 *
 *   [global]
 *   vm-min-mem = 200M          → qmemman['vm-min-mem']     (bytes; Qubes' parse_size)
 *   dom0-mem-boost = 350M      → qmemman['dom0-mem-boost'] (bytes)
 *   cache-margin-factor = 1.3  → qmemman['cache-margin-factor']
 *   log-level = 30             (accepted, not used: xmem has its own logLevel)
 *
 * As in qmemmand (Python configparser): only the [global] section is read, and only when it
 * exists; keys are case-insensitive; `=` or `:` separate key and value; whole-line comments
 * start with `#` or `;`; a key missing from [global] keeps qmemman's default. Unlike
 * configparser, anything malformed is an error with its line number (qmemmand would crash
 * at start or, for an unknown key, ignore it: unknown keys are ignored here too).
 *
 * @returns `{ qmemman: {...} }` with only the keys present, ready to merge under the policy
 *   config (PolicyConfigSchema). Throws Error naming the line on bad input.
 */
export type QmemmanConfKeys = {
  qmemman: {
    'vm-min-mem'?: number;
    'dom0-mem-boost'?: number;
    'cache-margin-factor'?: number;
  };
};

const MAX_CONF_BYTES = 64 * 1024;
const FLOAT_RE = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export function parseQmemmanConf(text: string): QmemmanConfKeys {
  if (text.length > MAX_CONF_BYTES) throw new Error(`qmemman.conf larger than ${MAX_CONF_BYTES} bytes`);
  const out: QmemmanConfKeys = { qmemman: {} };
  const seenSections = new Set<string>();
  const seenKeys = new Set<string>();
  let section: string | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const where = `line ${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (/^\s/.test(raw)) throw new Error(`${where}: indented continuation lines are not supported`);
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      if (seenSections.has(section)) throw new Error(`${where}: section [${section}] appears twice`);
      seenSections.add(section);
      continue;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`${where}: expected "key = value" or "[section]"`);
    if (section === null) throw new Error(`${where}: key before any [section]`);
    if (section !== 'global') continue;
    const key = kv[1]!.toLowerCase();
    const value = kv[2]!;
    if (seenKeys.has(key)) throw new Error(`${where}: ${key} appears twice in [global]`);
    seenKeys.add(key);
    switch (key) {
      case 'vm-min-mem':
      case 'dom0-mem-boost': {
        const bytes = parseQubesSize(value);
        if (bytes === null) throw new Error(`${where}: ${key}: not a size: ${JSON.stringify(value.slice(0, 40))} (e.g. 200M, 200MiB)`);
        out.qmemman[key] = bytes;
        break;
      }
      case 'cache-margin-factor': {
        const f = Number(value);
        if (!FLOAT_RE.test(value) || !(f > 0) || f > 100) {
          throw new Error(`${where}: cache-margin-factor: not a positive number ≤ 100: ${JSON.stringify(value.slice(0, 40))}`);
        }
        out.qmemman[key] = f;
        break;
      }
      default:
        // log-level and anything else qmemmand does not read.
        break;
    }
  }
  return out;
}
