import { z } from 'zod';

/**
 * xmem's admission socket: one JSON object per line each way. A client sends a request line and
 * reads one reply line per request; it may keep the connection open. A reservation is tied to
 * the connection that made it (released when it closes, whatever the cause) unless the request
 * says `detach: true`; then only `release` or the timeout end it (what `xmem reserve` without
 * --hold uses, so the reservation outlives the command).
 *
 *   → {"op":"reserve","bytes":2147483648,"for":"work","timeoutS":120}
 *   ← {"ok":true,"id":"r-1a2b…","kib":2097152,"how":"squeezed",…,"message":"reserved 2 GiB for work (…)"}
 *   ← {"ok":false,"kind":"below-floors","message":"cannot reserve …; shut down work or personal to free 1.2 GiB","refusal":{…}}
 *   → {"op":"release","id":"r-1a2b…"}      ← {"ok":true}
 *   → {"op":"list"}                         ← {"ok":true,"reservations":[…],"refusals":[…]}
 */

/** Where `xmem run` listens unless configured otherwise (XMEM_ADMISSION_SOCKET for clients). */
export const DEFAULT_ADMISSION_SOCKET = '/run/xmem/admission.sock';

/** Longest request line accepted; anything longer is refused and the connection closed. */
export const MAX_LINE_BYTES = 4096;

/** VM names as Qubes/xl allow them; also keeps log lines and state frames clean. */
export const VmNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a VM name: letters, digits, _ . - (at most 64)');

export const ReserveRequestSchema = z.strictObject({
  op: z.literal('reserve'),
  bytes: z.number().int().min(1).max(2 ** 50),
  for: VmNameSchema.default('unnamed'),
  /** Hold timeout for this reservation, seconds (bounded by the service's maximum). */
  timeoutS: z.number().positive().max(24 * 3600).optional(),
  detach: z.boolean().default(false),
});

export const ReleaseRequestSchema = z.strictObject({
  op: z.literal('release'),
  id: z.string().regex(/^r-[0-9a-f]{12}$/, 'a reservation id (r-…)'),
});

export const ListRequestSchema = z.strictObject({ op: z.literal('list') });

export const RequestSchema = z.discriminatedUnion('op', [ReserveRequestSchema, ReleaseRequestSchema, ListRequestSchema]);
export type AdmissionRequest = z.input<typeof RequestSchema>;

const DonorShare = z.object({ name: z.string(), giveKib: z.number() });
const Candidate = z.object({ domid: z.number(), name: z.string(), actualKib: z.number() });

export const RefusalDetailSchema = z.object({
  neededKib: z.number(),
  availableKib: z.number(),
  reclaimableKib: z.number(),
  missingKib: z.number(),
  donors: z.array(z.object({ domid: z.number(), name: z.string(), actualKib: z.number(), floorKib: z.number(), surplusKib: z.number(), giveKib: z.number() })),
  shutdown: z.array(Candidate).nullable(),
  shutdownAlternatives: z.array(Candidate),
});

export const ReserveReplySchema = z.union([
  z.object({
    ok: z.literal(true),
    id: z.string(),
    forName: z.string(),
    kib: z.number(),
    how: z.enum(['fits-now', 'squeezed']),
    waitedMs: z.number(),
    freeKib: z.number(),
    donors: z.array(DonorShare),
    expiresInS: z.number(),
    detached: z.boolean(),
    message: z.string(),
  }),
  z.object({
    ok: z.literal(false),
    kind: z.enum(['below-floors', 'stalled', 'not-ready', 'cancelled', 'invalid', 'busy']),
    message: z.string(),
    forName: z.string().optional(),
    kib: z.number().optional(),
    refusal: RefusalDetailSchema.optional(),
    stuck: z.array(z.string()).optional(),
  }),
]);
export type ReserveReply = z.infer<typeof ReserveReplySchema>;

export const ReleaseReplySchema = z.object({ ok: z.boolean(), message: z.string().optional() });

export const ListReplySchema = z.object({
  ok: z.literal(true),
  reservations: z.array(z.object({ id: z.string(), forName: z.string(), kib: z.number(), state: z.enum(['squeezing', 'held']), ageS: z.number(), expiresInS: z.number() })),
  refusals: z.array(z.object({ atMs: z.number(), forName: z.string(), neededKib: z.number(), reason: z.string() })),
});
export type ListReply = z.infer<typeof ListReplySchema>;
