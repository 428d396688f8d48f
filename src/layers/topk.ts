// TopK activation and the TopK feed-forward block on a Device (float32) — twins of the reference's topk layers.
//
// Dimension legend: T tokens (rows), F units per row (hidden units, or d for placement 'hidden'), d model dim, k kept
//
// TopK activation (docs/spec.md §4.3, our reading, as in the reference):
//   m = 1{ z ≥ τ_k(z) }  per row (τ_k = k-th largest; ties at τ_k all kept);   y = α·f(z) + (1 − α)·f(z) ⊙ m,  f = ReLU
// Backward: dz = dy ⊙ (α + (1 − α)·m) ⊙ f'(z); the mask is constant (no gradient through τ_k).
// TopK FFN: y = down( topk(up x) ).

import type { Scope } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { linearBackward, linearForward } from './common.ts';

import type { TopkConfig } from '../../reference/topk.ts';
import type { TopkFfnConfig } from '../../reference/topk-ffn.ts';

/** The reference's config types (k, alpha; and hidden_size, intermediate_size for the FFN). */
export type { TopkConfig } from '../../reference/topk.ts';
export type { TopkFfnConfig } from '../../reference/topk-ffn.ts';

/** What the activation saves: its input (f' needs it) and the mask (also the idx.mask fixture output). */
export interface TopkSaved {
  z: F32; // (T, F) input
  mask: I32; // (T, F) 1 where selected
}

export function topkForward(sc: Scope, y: F32, z: F32, cfg: TopkConfig, T: number, F: number): TopkSaved {
  const k = sc.dev.kernels;
  const mask = sc.i32(T * F); // (T, F)
  k.thresholdTopkMask(mask, z, { rows: T, n: F, k: cfg.k });
  k.activation(y, z, { n: T * F, kind: 'relu' });
  k.maskScale(y, y, mask, { n: T * F, alpha: cfg.alpha });
  return { z, mask };
}

/** dz += dy ⊙ (α + (1 − α)·m) ⊙ relu'(z). */
export function topkBackward(
  sc: Scope,
  dz: F32,
  dy: F32,
  saved: TopkSaved,
  cfg: TopkConfig,
  T: number,
  F: number,
): void {
  const k = sc.dev.kernels;
  const dyScaled = sc.f32(T * F); // (T, F)
  k.maskScale(dyScaled, dy, saved.mask, { n: T * F, alpha: cfg.alpha });
  k.activationBackward(dz, dyScaled, saved.z, { n: T * F, kind: 'relu' });
}

export interface TopkFfnWeights {
  up: F32; // (F, d)
  down: F32; // (d, F)
}
export interface TopkFfnGrads {
  up: F32 | null;
  down: F32 | null;
}
export interface TopkFfnSaved {
  act: TopkSaved; // z = up x (T, F) and its mask
  h: F32; // (T, F) the TopK activation, input of down
}

export function topkFfnForward(
  sc: Scope,
  y: F32,
  x: F32,
  w: TopkFfnWeights,
  cfg: TopkFfnConfig,
  T: number,
): TopkFfnSaved {
  const k = sc.dev.kernels;
  const { d, F } = cfg;
  const z = sc.f32(T * F); // (T, F)
  const h = sc.f32(T * F); // (T, F)
  linearForward(k, z, x, w.up, null, T, d, F);
  const act = topkForward(sc, h, z, cfg, T, F);
  linearForward(k, y, h, w.down, null, T, F, d);
  return { act, h };
}

export function topkFfnBackward(
  sc: Scope,
  dx: F32 | null,
  g: TopkFfnGrads,
  dy: F32,
  x: F32,
  w: TopkFfnWeights,
  saved: TopkFfnSaved,
  cfg: TopkFfnConfig,
  T: number,
): void {
  const k = sc.dev.kernels;
  const { d, F } = cfg;
  const dh = sc.f32(T * F); // (T, F)
  linearBackward(k, dh, g.down, null, dy, saved.h, w.down, T, F, d);
  const dz = sc.f32(T * F); // (T, F)
  topkBackward(sc, dz, dh, saved.act, cfg, T, F);
  linearBackward(k, dx, g.up, null, dz, x, w.up, T, d, F);
}
