import { decide as policyDecide } from '../../src/policy/index.js';
import type { PolicyConfig } from '../../src/policy/config.js';
import type { HostSnapshot, PolicyResult } from '../../src/policy/types.js';
import type { ReservationBook } from './book.js';

/**
 * The manager's policy with admission's set-mem pins applied: a pinned domain enters the policy
 * as if the config pinned it (held at that size, its memory counted, never balanced), so the
 * qmemman.sock "<domid>:<bytes>" request is carried out by the manager itself.
 * `xmem run` passes `decide: withAdmissionPins(book)` to the Manager.
 */
export function withAdmissionPins(
  book: ReservationBook,
  decide: (s: HostSnapshot, c: PolicyConfig) => PolicyResult = policyDecide,
): (s: HostSnapshot, c: PolicyConfig) => PolicyResult {
  return (snapshot, config) => {
    book.pinsWired = true;
    const pins = book.pins();
    if (pins.size === 0) return decide(snapshot, config);
    const vms = snapshot.vms.map((vm) => {
      const pin = pins.get(vm.domid);
      return pin === undefined ? vm : { ...vm, override: { ...(vm.override ?? {}), pinKib: pin } };
    });
    return decide({ ...snapshot, vms }, config);
  };
}
