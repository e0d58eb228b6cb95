import { z } from 'zod';

/**
 * The dom0 service's state stream (WebSocket on a local unix socket; `xmem top`, `xmem status`).
 * Versioned: a client refuses a `v` it does not know. The server sends a `snapshot` on connect,
 * then `snapshot` messages after every pass (they are small: ~200 bytes per VM).
 */
export const STATE_VERSION = 1;

export const VmFlagSchema = z.enum(['stuck', 'paused', 'dying', 'no-agent', 'bad-report', 'stale', 'pinned', 'pressure', 'dom0']);
export type VmFlag = z.infer<typeof VmFlagSchema>;

export const VmStateSchema = z.object({
  domid: z.number().int(),
  name: z.string(),
  actualKib: z.number(),
  targetKib: z.number().nullable(),
  idealKib: z.number().nullable(),
  floorKib: z.number().nullable(),
  maxmemKib: z.number(),
  /** Guest-reported PSI some/full avg10 (percent), null without an xmem agent. */
  psiSome10: z.number().nullable(),
  psiFull10: z.number().nullable(),
  /** Age of the last valid guest report, ms; null if none. */
  reportAgeMs: z.number().nullable(),
  /** Which signal drives this VM: xmem agent, qubes meminfo, xapi agent, or none. */
  signal: z.enum(['xmem', 'qubes', 'xapi', 'none']),
  flags: z.array(VmFlagSchema),
  /** The last reason its target moved (or why it is held). */
  reason: z.string(),
  reasonAtMs: z.number().nullable(),
});
export type VmState = z.infer<typeof VmStateSchema>;

export const ReservationStateSchema = z.object({
  id: z.string(),
  forName: z.string(),
  kib: z.number(),
  sinceMs: z.number(),
  state: z.enum(['squeezing', 'held']),
});

export const RefusalSchema = z.object({
  atMs: z.number(),
  forName: z.string(),
  neededKib: z.number(),
  reason: z.string(),
});
export type Refusal = z.infer<typeof RefusalSchema>;

export const DecisionLogSchema = z.object({
  atMs: z.number(),
  domid: z.number().int(),
  name: z.string(),
  fromKib: z.number().nullable(),
  toKib: z.number(),
  reason: z.string(),
});
export type DecisionLog = z.infer<typeof DecisionLogSchema>;

export const HostStateSchema = z.object({
  v: z.literal(STATE_VERSION),
  type: z.literal('snapshot'),
  /** Wall-clock ms (Date.now()) when the snapshot was taken. */
  atMs: z.number(),
  policy: z.string(),
  host: z.object({
    totalKib: z.number(),
    freeKib: z.number(),
    reservedKib: z.number(),
    summary: z.string(),
  }),
  vms: z.array(VmStateSchema),
  reservations: z.array(ReservationStateSchema),
  refusals: z.array(RefusalSchema),
  decisions: z.array(DecisionLogSchema),
});
export type HostState = z.infer<typeof HostStateSchema>;
