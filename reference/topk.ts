// TopK activation of TopK language models (SPEC §4.3–4.4; "our reading" of arXiv 2506.21468), float64, forward and
// backward, and the α annealing schedule.
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

import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import { u8, type TensorMap } from '../src/tensor.ts';
import { act, actGrad } from './activations.ts';
import { CaseInputs, cfgEnum, cfgInt, cfgNum, gradBuffer, put, type Config } from './common.ts';

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
  const { k, alpha } = cfg;
  if (!(k >= 1 && k <= F)) throw new Error(`topk: k must be in [1, ${F}], found ${k}`);
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
 * α at a training step: linear from 1 (step 0) down to 0 at step ratio·totalSteps, then 0 (SPEC §4.4: "α anneals
 * linearly from 1 to 0 over the first 20 % of training steps"). `step` is the 0-based global step. A ratio of 0
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

/** k and alpha from a config (shared by the topk, topk-ffn kinds and the TopK LM); k is checked against F. */
export function parseTopkConfig(config: Config, F: number, where: string, kKey = 'k'): TopkConfig {
  const k = cfgInt(config, kKey, where);
  if (k > F) throw new Error(`${where}: config.${kKey}: expected at most ${F} (the width it selects from), found ${k}`);
  const alpha = cfgNum(config, 'alpha', where);
  if (alpha < 0 || alpha > 1) throw new Error(`${where}: config.alpha: expected a number in [0, 1], found ${alpha}`);
  return { k, alpha };
}

/**
 * Fixture case `topk`: in.x (T, F), in.dy (T, F) → out.y, idx.mask (T, F) U8, grad.in.x. Objective Σ out.y ⊙ in.dy.
 * config: k, alpha, activation ('relu', the only one defined).
 */
export function runTopkCase(c: FixtureCase, opts?: RunOptions): TensorMap {
  const inp = new CaseInputs(c);
  const shape = inp.shapeOf('in.x');
  if (shape.length !== 2) throw new Error(`${inp.where}: in.x: expected shape [T, F], found [${shape}]`);
  const [T, F] = shape;
  cfgEnum(c.config, 'activation', ['relu'], inp.where, 'relu');
  const cfg = parseTopkConfig(c.config, F, inp.where);
  const x = inp.f64('in.x', [T, F]); // (T, F)
  const dy = inp.has('in.dy') ? inp.f64('in.dy', [T, F]) : null; // (T, F)
  inp.assertAllUsed();
  if (!dy && !opts?.forwardOnly)
    throw new Error(`${inp.where}: missing tensor in.dy (expected shape [${T}, ${F}]) for the backward pass`);

  const out: TensorMap = new Map();
  const y = new Float64Array(T * F); // (T, F)
  const saved = topkForward(y, x, T, F, cfg);
  put(out, 'out.y', [T, F], y);
  out.set('idx.mask', u8([T, F], saved.mask));
  if (opts?.forwardOnly || !dy) return out;
  const dx = gradBuffer(opts, 'grad.in.x', [T, F]); // (T, F)
  topkBackward(dx, dy, x, saved, T, F, cfg);
  put(out, 'grad.in.x', [T, F], dx);
  return out;
}
