import { memView } from '../../domU-agent/src/report.js';
import type { MemView } from '../../domU-agent/src/schedule.js';
import type { MemSample } from '../../domU-agent/src/sources.js';
import type { Raw } from '../../domU-agent/src/watch.js';

/** A sample with these raw values (watch.ts COLUMNS order; balloon 0 = none). */
export function sampleOf(raw: Raw): MemSample {
  const [memTotal, memFree, buffers, cached, swapTotal, swapFree, memAvailable, committedAS, bcur] = raw as number[];
  return {
    meminfo: {
      memTotal: memTotal!, memFree: memFree!, buffers: buffers!, cached: cached!, swapTotal: swapTotal!, swapFree: swapFree!,
      memAvailable: memAvailable!, committedAS: committedAS!, memAvailableEstimated: false,
      activeFile: 0, inactiveFile: 0, shmem: 0, sReclaimable: 0, sUnreclaim: 0, anonPages: 0, mlocked: 0,
    },
    balloon: bcur! > 0 ? { currentKib: bcur!, targetKib: bcur! } : null,
  };
}

/** The agent's own MemView of those raw values. */
export const viewOf = (raw: Raw): MemView => memView(sampleOf(raw));
