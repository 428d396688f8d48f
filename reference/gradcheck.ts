// Central finite differences in float64: the independent check of every hand-written backward.
//
//   ∂f/∂θ_i ≈ (f(θ + h·e_i) − f(θ − h·e_i)) / 2h
// The truncation error is O(h²·f‴) and the rounding error O(ε·|f|/h); h = 1e-5 balances the two in float64 so that
// a correct backward agrees to ~1e-9 relative on smooth functions. Discrete decisions (top-k, masks) must sit at
// least a few h away from their boundaries, which the test inputs guarantee (margins.ts).
//
// Relative error of a whole tensor: max_i |a_i − n_i| / max(max_i |n_i|, GRAD_FLOOR). Normalising by the tensor's
// largest entry, not element by element, keeps tiny entries (where FD noise dominates) from reporting false alarms
// while still catching any entry that is wrong by more than the tolerance times the tensor's scale.
// GRAD_FLOOR = 1e-4: a tensor whose whole gradient is below it — typically exactly zero, like a bias in front of a
// train-mode BatchNorm, or an expert no token was routed to — is compared in absolute terms (1e-6 · 1e-4 = 1e-10),
// which is still ~10× above the finite-difference noise ε·|L|/h ≈ 1e-11 of an O(1) loss.

/** Numerical gradient of f() w.r.t. the entries `idx` of `theta` (all entries if idx is omitted). theta is restored. */
export function numericGrad(f: () => number, theta: Float64Array, idx?: readonly number[], h = 1e-5): Float64Array {
  const out = new Float64Array(theta.length);
  const which = idx ?? Array.from({ length: theta.length }, (_, i) => i);
  for (const i of which) {
    const v = theta[i];
    theta[i] = v + h;
    const fp = f();
    theta[i] = v - h;
    const fm = f();
    theta[i] = v;
    out[i] = (fp - fm) / (2 * h);
  }
  return out;
}

export const GRAD_FLOOR = 1e-4;

/** max|a − n| / max(max|n|, GRAD_FLOOR) over `idx` (all entries if omitted). */
export function relError(analytic: Float64Array, numeric: Float64Array, idx?: readonly number[]): number {
  const which = idx ?? Array.from({ length: analytic.length }, (_, i) => i);
  let maxDiff = 0;
  let maxN = 0;
  for (const i of which) {
    maxDiff = Math.max(maxDiff, Math.abs(analytic[i] - numeric[i]));
    maxN = Math.max(maxN, Math.abs(numeric[i]));
  }
  return maxDiff / Math.max(maxN, GRAD_FLOOR);
}

/** One tensor to check: its values (perturbed in place, then restored) and the analytic gradient. */
export interface GradCheckTensor {
  name: string;
  value: Float64Array;
  grad: Float64Array;
}

export interface GradCheckResult {
  name: string;
  relError: number; // as relError() above, over the checked entries
  checked: number; // how many entries were perturbed
}

/**
 * Finite-difference check of several tensors against one scalar loss(). With `sample`, only that many entries
 * per tensor are perturbed, chosen by `pick(n)` (an integer in [0, n)); otherwise every entry.
 */
export function gradCheck(
  loss: () => number,
  tensors: readonly GradCheckTensor[],
  opts: { sample?: number; pick?: (n: number) => number; h?: number } = {},
): GradCheckResult[] {
  return tensors.map(({ name, value, grad }) => {
    let idx: number[] | undefined;
    if (opts.sample !== undefined && opts.sample < value.length) {
      if (!opts.pick) throw new Error('gradCheck: sampling needs a pick(n) function');
      const set = new Set<number>();
      while (set.size < opts.sample) set.add(opts.pick(value.length));
      idx = [...set];
    }
    const numeric = numericGrad(loss, value, idx, opts.h);
    return { name, relError: relError(grad, numeric, idx), checked: idx ? idx.length : value.length };
  });
}
