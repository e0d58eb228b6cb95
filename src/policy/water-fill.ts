/**
 * Shares `amount` among items, each getting `min(cap_i, λ·share_i)` for the one λ that uses
 * the amount up (or everyone's cap when the amount suffices). With share_i = weight_i × cap_i
 * every item gets the same weighted fraction of its cap, the "scale proportionally" rule;
 * with share_i = weight_i × size_i the amount is spread in proportion to size, qmemman-style.
 * Results are integers (floored), Σ ≤ amount, each ≤ cap, and monotone in `amount`.
 * O(n log n).
 */
export function waterFill(caps: ArrayLike<number>, shares: ArrayLike<number>, amount: number): Float64Array {
  const n = caps.length;
  const out = new Float64Array(n);
  if (!(amount > 0) || n === 0) return out;
  let capSum = 0;
  for (let i = 0; i < n; i++) capSum += Math.max(0, caps[i]!);
  if (capSum <= amount) {
    for (let i = 0; i < n; i++) out[i] = Math.max(0, Math.floor(caps[i]!));
    return out;
  }
  // Items saturate in order of cap/share; find λ by walking that order.
  const ratio = new Float64Array(n);
  const active: number[] = [];
  let shareLeft = 0;
  for (let i = 0; i < n; i++) {
    if (caps[i]! > 0 && shares[i]! > 0) {
      ratio[i] = caps[i]! / shares[i]!;
      active.push(i);
      shareLeft += shares[i]!;
    }
  }
  const idx = Uint32Array.from(active).sort((a, b) => ratio[a]! - ratio[b]!);
  let left = amount;
  let k = 0;
  for (; k < idx.length; k++) {
    const i = idx[k]!;
    if (caps[i]! * shareLeft > left * shares[i]!) break; // this one (and all after) is not saturated
    out[i] = Math.floor(caps[i]!);
    left -= caps[i]!;
    shareLeft -= shares[i]!;
  }
  if (k < idx.length && shareLeft > 0) {
    const lambda = left / shareLeft;
    for (; k < idx.length; k++) {
      const i = idx[k]!;
      const x = lambda * shares[i]!;
      // A share that reaches its cap up to float error is the cap: otherwise a VM whose
      // range is exactly filled would sit 1 KiB short of it and jitter between passes.
      out[i] = x >= caps[i]! * (1 - 1e-12) ? Math.floor(caps[i]!) : Math.floor(x);
    }
    // That rounding may never hand out more than the amount.
    let total = 0;
    let largest = -1;
    for (let i = 0; i < n; i++) {
      total += out[i]!;
      if (largest < 0 || out[i]! > out[largest]!) largest = i;
    }
    if (total > amount && largest >= 0) out[largest] = Math.max(0, out[largest]! - Math.ceil(total - amount));
  }
  return out;
}
