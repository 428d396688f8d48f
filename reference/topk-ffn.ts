// TopK feed-forward block (TopK LM, docs/spec.md §4.3, placement 'ffn'), float64, forward and backward.
//
// Dimension legend:
//   T tokens, d model dim (hidden_size), F hidden units (intermediate_size), k units kept per token
//
//   z = up_proj x              (T, F)     up_proj.weight (F, d)
//   a = TopK_α(z)              (T, F)     topk.ts: α·relu(z) + (1 − α)·relu(z) ⊙ 1{z ≥ τ_k(z)}
//   y = down_proj a            (T, d)     down_proj.weight (d, F)
// This is literally a TopK sparse autoencoder / transcoder layer (encoder up_proj, decoder down_proj), which is the
// point of TopK LMs. (A gated SwiGLU variant is not defined here; docs/spec.md §4.3 marks it only as an alternative.)
// Backward: dA = dy·down, ddown += dyᵀ·a, dz = TopK backward, dup += dzᵀ·x, dx += dz·up.

import type { Params } from './common.ts';
import { linearBackward, linearForward } from './linear.ts';
import { topkBackward, topkForward, type TopkConfig, type TopkSaved } from './topk.ts';

export interface TopkFfnConfig extends TopkConfig {
  d: number; // hidden_size
  F: number; // intermediate_size
}

/** What forward saves for backward. */
export interface TopkFfnSaved {
  z: Float64Array; // (T, F) up_proj x, the TopK input
  a: Float64Array; // (T, F) TopK output, the down_proj input
  topk: TopkSaved; // the mask (T, F)
}

export function topkFfnForward(
  y: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: Params, // up_proj.weight (F, d), down_proj.weight (d, F)
  cfg: TopkFfnConfig,
  T: number,
): TopkFfnSaved {
  const { d, F } = cfg;
  const z = new Float64Array(T * F); // (T, F)
  linearForward(z, x, p['up_proj.weight'], null, T, d, F);
  const a = new Float64Array(T * F); // (T, F)
  const topk = topkForward(a, z, T, F, cfg);
  linearForward(y, a, p['down_proj.weight'], null, T, F, d);
  return { z, a, topk };
}

/** Accumulates into dx (if not null) and g (null entries skipped). */
export function topkFfnBackward(
  dx: Float64Array | null, // (T, d)
  g: Params | null, // gradients, same names as p
  dy: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: Params,
  saved: TopkFfnSaved,
  cfg: TopkFfnConfig,
  T: number,
): void {
  const { d, F } = cfg;
  const da = new Float64Array(T * F); // (T, F)
  linearBackward(da, g?.['down_proj.weight'] ?? null, null, dy, saved.a, p['down_proj.weight'], T, F, d);
  const dz = new Float64Array(T * F); // (T, F)
  topkBackward(dz, da, saved.z, saved.topk, T, F, cfg);
  linearBackward(dx, g?.['up_proj.weight'] ?? null, null, dz, x, p['up_proj.weight'], T, d, F);
}
