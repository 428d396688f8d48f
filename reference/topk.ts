// TopK activation of TopK language models (docs/spec.md §4.3–4.4; "our reading" of arXiv 2506.21468), float64,
// forward and backward, and the α annealing schedule.
//
// Dimension legend:
//   N  rows (tokens), F entries per row (hidden units for placement 'ffn'; model dim d for placement 'hidden')
//   k  units kept per row
//
// Forward, per row z ∈ R^F (f = ReLU, α ∈ [0, 1]):
//   τ_k = k-th largest entry of z (counting duplicates)
//   m   = 1{z ≥ τ_k}                      the mask; every entry tied with τ_k is kept, so a row may keep more than k
//   y   = α·f(z) + (1 − α)·f(z) ⊙ m        α = 1: plain ReLU; α = 0: pure TopK (at most k non-zeros, fewer if
//                                          selected entries are ≤ 0, since ReLU zeroes them)
// The mask is computed on the same z that f sees (not on f(z)), as the spec's pitfalls ask.
// Backward: the mask and τ_k are piecewise constant, so they get no gradient:
//   dz = dy ⊙ f'(z) ⊙ (α + (1 − α)·m)
// Unselected units therefore learn only through the α-weighted dense path, which vanishes once α reaches 0.

import { act, actGrad } from './activations.ts';

export interface TopkConfig {
  k: number;
  alpha: number; // the α of this step, in [0, 1]
}

/** What forward saves: the mask (the input z is kept by the caller). */
export interface TopkSaved {
  mask: Uint8Array; // (N, F) 1 where z ≥ τ_k
}

/** τ_k of one row: the k-th largest value (naive: sort a copy; O(F log F), fine for a reference). */
export function kthLargest(
  row: Float64Array, // (F)
  k: number,
): number {
  const sorted = Float64Array.from(row).sort(); // ascending
  return sorted[row.length - k];
}

export function topkForward(
  out: Float64Array, // (N, F)
  inp: Float64Array, // (N, F) pre-activation z
  N: number,
  F: number,
  cfg: TopkConfig,
): TopkSaved {
  const { k, alpha } = cfg; // 1 ≤ k ≤ F (src/kinds/topk.ts refuses other k)
  const mask = new Uint8Array(N * F); // (N, F)
  for (let n = 0; n < N; n++) {
    const o = n * F;
    const tau = kthLargest(inp.subarray(o, o + F), k);
    for (let i = 0; i < F; i++) {
      const z = inp[o + i];
      const m = z >= tau ? 1 : 0;
      mask[o + i] = m;
      out[o + i] = act('relu', z) * (alpha + (1 - alpha) * m);
    }
  }
  return { mask };
}

/** dinp += dout ⊙ f'(z) ⊙ (α + (1 − α)·m). */
export function topkBackward(
  dinp: Float64Array, // (N, F)
  dout: Float64Array, // (N, F)
  inp: Float64Array, // (N, F) the saved pre-activation z
  saved: TopkSaved,
  N: number,
  F: number,
  cfg: TopkConfig,
): void {
  const { alpha } = cfg;
  for (let j = 0; j < N * F; j++) dinp[j] += dout[j] * actGrad('relu', inp[j]) * (alpha + (1 - alpha) * saved.mask[j]);
}

/**
 * α at a training step: linear from 1 (step 0) down to 0 at step ratio·totalSteps, then 0 (docs/spec.md §4.4: "α
 * anneals linearly from 1 to 0 over the first 20 % of training steps"). `step` is the 0-based global step. A ratio of 0
 * means no annealing: α = 0 from the start.
 */
export function topkAlpha(step: number, totalSteps: number, ratio = 0.2): number {
  if (!(Number.isInteger(step) && step >= 0)) throw new Error(`topkAlpha: step must be an integer ≥ 0, found ${step}`);
  if (!(Number.isInteger(totalSteps) && totalSteps >= 1))
    throw new Error(`topkAlpha: totalSteps must be an integer ≥ 1, found ${totalSteps}`);
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`topkAlpha: ratio must be in [0, 1], found ${ratio}`);
  const annealSteps = ratio * totalSteps;
  if (annealSteps === 0) return 0;
  return Math.max(0, 1 - step / annealSteps);
}
