/** Pure parsers for the /proc files xmem reads: text in, typed values or one clear error out. */
export { parseMeminfo, MEMINFO_MAX_BYTES, type Meminfo } from './meminfo.js';
export { parsePressure, PSI_MAX_BYTES, type Pressure, type PsiLine } from './psi.js';
export { parseVmstat, VMSTAT_MAX_BYTES, type Vmstat } from './vmstat.js';
export type { ParseResult } from './text.js';
