/**
 * Shares `amount` among items, each getting `min(cap_i, max(0, λ·share_i − offset_i))` for the
 * one λ that uses the amount up (or everyone's cap when the amount suffices). With
 * share_i = weight_i × cap_i every item gets the same weighted fraction of its cap, the "scale
 * proportionally" rule; with share_i = weight_i × size_i the amount is spread in proportion to
 * size, qmemman-style. An offset (default 0) is what an item already holds of its share: it
 * takes only once λ·share_i passes it. Results are integers (floored), Σ ≤ amount, each ≤ cap,
 * and monotone in `amount`.
 *
 * O(n log n): the points where an item starts taking and is full are sorted natively (no
 * comparator callbacks: this runs on every pass for every VM) and the last one below λ is
 * found by binary search, each probe a tight O(n) sum.
 */
export function waterFill(caps: ArrayLike<number>, shares: ArrayLike<number>, amount: number, offsets?: ArrayLike<number>): Float64Array {
  const n = caps.length;
  const out = new Float64Array(n);
  if (!(amount > 0) || n === 0) return out;
  let capSum = 0;
  for (let i = 0; i < n; i++) capSum += Math.max(0, caps[i]!);
  if (capSum <= amount) {
    for (let i = 0; i < n; i++) out[i] = Math.max(0, Math.floor(caps[i]!));
    return out;
  }
  // λ at which item i starts taking and at which it is full; Infinity: it never takes
  // (no cap or no share).
  const start = new Float64Array(n).fill(Infinity);
  const end = new Float64Array(n).fill(Infinity);
  const off = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (!(caps[i]! > 0 && shares[i]! > 0)) continue;
    const o = offsets ? Math.max(0, offsets[i]!) : 0;
    off[i] = o;
    start[i] = o / shares[i]!;
    end[i] = (o + caps[i]!) / shares[i]!;
    m++;
  }
  if (m === 0) return out;
  // Breakpoints, ascending (numeric sort; Infinity last). Without offsets every item starts at
  // 0, so one 0 stands for all the starts.
  const points = offsets ? new Float64Array(2 * n) : new Float64Array(n + 1);
  points.set(end);
  if (offsets) points.set(start, n);
  points.sort();
  const last = offsets ? 2 * m - 1 : m;

  /** Memory handed out at level r. */
  const handedOut = (r: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      if (start[i] === Infinity) continue;
      sum += r >= end[i]! ? caps[i]! : r > start[i]! ? r * shares[i]! - off[i]! : 0;
    }
    return sum;
  };
  // The largest breakpoint at which the amount is not yet used up: λ lies at or above it.
  let lo = 0;
  let hi = last;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (handedOut(points[mid]!) <= amount) lo = mid;
    else hi = mid - 1;
  }
  const cut = points[lo]!;
  // Between this breakpoint and the next, items full at `cut` stay full and those started at
  // `cut` are still filling: the amount is linear in λ there.
  let left = amount;
  let shareActive = 0;
  for (let i = 0; i < n; i++) {
    if (start[i] === Infinity) continue;
    if (end[i]! <= cut) left -= caps[i]!;
    else if (start[i]! <= cut) {
      shareActive += shares[i]!;
      left += off[i]!;
    }
  }
  const lambda = shareActive > 0 ? Math.max(cut, left / shareActive) : cut;
  let total = 0;
  let largest = -1;
  for (let i = 0; i < n; i++) {
    if (start[i] === Infinity) continue;
    if (end[i]! <= cut) out[i] = Math.floor(caps[i]!);
    else if (start[i]! <= cut) {
      const x = lambda * shares[i]! - off[i]!;
      // A share that reaches its cap up to float error is the cap: otherwise a VM whose range
      // is exactly filled would sit 1 KiB short of it and jitter between passes.
      out[i] = x >= caps[i]! * (1 - 1e-12) ? Math.floor(caps[i]!) : Math.max(0, Math.floor(x));
    }
    total += out[i]!;
    if (largest < 0 || out[i]! > out[largest]!) largest = i;
  }
  // That rounding may never hand out more than the amount.
  if (total > amount && largest >= 0) out[largest] = Math.max(0, out[largest]! - Math.ceil(total - amount));
  return out;
}
