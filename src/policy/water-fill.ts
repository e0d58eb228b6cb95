/**
 * Shares `amount` among items, each getting `min(cap_i, λ·share_i)` for the one λ that uses
 * the amount up (or everyone's cap when the amount suffices). With share_i = weight_i × cap_i
 * every item gets the same weighted fraction of its cap, the "scale proportionally" rule;
 * with share_i = weight_i × size_i the amount is spread in proportion to size, qmemman-style.
 * Results are integers (floored), Σ ≤ amount, each ≤ cap, and monotone in `amount`.
 *
 * O(n log n): the saturation points cap_i / share_i are sorted natively (no comparator
 * callbacks: this runs on every pass for every VM) and the last one below λ is found by
 * binary search, each probe a tight O(n) sum.
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
  const ratio = new Float64Array(n).fill(Infinity); // items with no cap or no share take nothing
  let m = 0;
  for (let i = 0; i < n; i++) if (caps[i]! > 0 && shares[i]! > 0) (ratio[i] = caps[i]! / shares[i]!), m++;
  if (m === 0) return out;
  const sorted = ratio.slice().sort(); // numeric, ascending, Infinity last

  /** Memory handed out if every item with ratio ≤ r is full and the rest get r × share. */
  const handedOut = (r: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const q = ratio[i]!;
      if (q === Infinity) continue;
      sum += q <= r ? caps[i]! : r * shares[i]!;
    }
    return sum;
  };
  // The largest k whose ratio still fits: items with ratio ≤ sorted[k] are saturated.
  let lo = -1;
  let hi = m - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (handedOut(sorted[mid]!) <= amount) lo = mid;
    else hi = mid - 1;
  }
  const cut = lo >= 0 ? sorted[lo]! : -Infinity;
  let left = amount;
  let shareLeft = 0;
  for (let i = 0; i < n; i++) {
    const q = ratio[i]!;
    if (q === Infinity) continue;
    if (q <= cut) left -= caps[i]!;
    else shareLeft += shares[i]!;
  }
  const lambda = shareLeft > 0 ? Math.max(0, left) / shareLeft : 0;
  let total = 0;
  let largest = -1;
  for (let i = 0; i < n; i++) {
    const q = ratio[i]!;
    if (q === Infinity) continue;
    if (q <= cut) out[i] = Math.floor(caps[i]!);
    else {
      const x = lambda * shares[i]!;
      // A share that reaches its cap up to float error is the cap: otherwise a VM whose range
      // is exactly filled would sit 1 KiB short of it and jitter between passes.
      out[i] = x >= caps[i]! * (1 - 1e-12) ? Math.floor(caps[i]!) : Math.floor(x);
    }
    total += out[i]!;
    if (largest < 0 || out[i]! > out[largest]!) largest = i;
  }
  // That rounding may never hand out more than the amount.
  if (total > amount && largest >= 0) out[largest] = Math.max(0, out[largest]! - Math.ceil(total - amount));
  return out;
}
