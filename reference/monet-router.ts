// Monet router (docs/spec.md §1.3, backward §1.10), float64, forward and backward.
//
// Dimension legend:
//   T  tokens (all sequences flattened)      d  model dim
//   H  expert heads (moe_heads)               E  experts per side = √N (moe_experts)
//   topk  the average number of experts per head the BatchNorm threshold is tuned to keep (moe_topk)
//
// Parameters (names as in the official `MonetRouter`): `w1.weight`, `w2.weight` (H·E, d), no bias.
// State: `norm1.running_mean`, `norm1.running_var`, `norm2.*` (H): BatchNorm1d(H, affine=False).
//
// For each of the two routers r ∈ {1, 2}, independently:
//   z_r[t,h,i] = (w_r x_t)[h·E + i]                    raw logits, head-major (unflatten(-1, (H, E)))
//   n_r        = BatchNorm over tokens AND experts, one channel per head (no affine)
//   sigma      = Φ⁻¹(1 − topk/E)                       the Gaussian quantile that keeps topk of E on average
//   s_r[t,h]   = min(max_i n_r[t,h,i], sigma)          the clamp guarantees at least one selected expert
//   M_r[t,h,i] = n_r[t,h,i] ≥ s_r[t,h]                 ≥: tied entries are all selected
//   g_r[t,h,:] = softmax over the selected i of the RAW logits z_r (not of n_r); unselected entries are 0
//
// Backward: M depends on z only through comparisons, so no gradient flows through BatchNorm, the threshold or
// sigma. Only the selected raw logits receive gradient, through the softmax:
//   dz_r[t,h,i] = g_r[t,h,i]·(dg_r[t,h,i] − Σ_i' g_r[t,h,i']·dg_r[t,h,i'])    (0 automatically where g = 0)
//   dW_r += dz_r ⊗ x;   dx += W_rᵀ dz_r
//
// Official code detail we do not copy: it fills unselected logits with −1e10 before a full softmax; exp underflows
// to exactly 0 there, which is what skipping them here computes (docs/spec.md §1.11 pitfall 1).

import { batchnormForward, type BatchNormMode, type BatchNormSaved } from './batchnorm.ts';
import type { Params } from './common.ts';
import { linearForward } from './linear.ts';
import { monetSigma } from './normal.ts';

export interface MonetRouterDims {
  T: number;
  d: number;
  H: number;
  E: number;
}

export interface MonetRouterOptions {
  topk: number; // moe_topk
  mode: BatchNormMode;
  bnEps: number; // 1e-5 (PyTorch default)
  bnMomentum: number; // 0.1 (PyTorch default)
}

/** Router parameters, keyed by the official names. */
export type MonetRouterParams = Record<'w1.weight' | 'w2.weight', Float64Array>; // each (H·E, d)
/** BatchNorm buffers, keyed by the official names (each (H)). */
export type MonetRouterState = Record<
  'norm1.running_mean' | 'norm1.running_var' | 'norm2.running_mean' | 'norm2.running_var',
  Float64Array
>;

/**
 * What forward saves for backward (only g is needed: the softmax Jacobian is expressed through g). The BatchNorm
 * records keep the normalised logits n_r (bn_r.xhat, (T, H, E)), which is what the selection compared with sigma.
 */
export interface MonetRouterSaved {
  g1: Float64Array; // (T, H, E)
  g2: Float64Array; // (T, H, E)
  mask1: Uint8Array; // (T, H, E) selection masks (also the idx.mask1/idx.mask2 fixture outputs)
  mask2: Uint8Array; // (T, H, E)
  sigma: number;
  bn1: BatchNormSaved;
  bn2: BatchNormSaved;
}

/**
 * Select and softmax one router's logits.
 * g, mask (T, H, E) are written; z, n (T, H, E) are the raw and batch-normalised logits.
 */
export function monetSelectSoftmax(
  g: Float64Array, // (T, H, E) out
  mask: Uint8Array, // (T, H, E) out
  z: Float64Array, // (T, H, E) raw logits
  n: Float64Array, // (T, H, E) normalised logits
  sigma: number,
  T: number,
  H: number,
  E: number,
): void {
  for (let th = 0; th < T * H; th++) {
    const row = th * E; // offset of (t, h)
    let nmax = -Infinity;
    for (let i = 0; i < E; i++) nmax = Math.max(nmax, n[row + i]);
    const s = Math.min(nmax, sigma); // threshold
    // softmax over the selected raw logits, stabilised by their max
    let zmax = -Infinity;
    for (let i = 0; i < E; i++) {
      const sel = n[row + i] >= s;
      mask[row + i] = sel ? 1 : 0;
      if (sel) zmax = Math.max(zmax, z[row + i]);
    }
    let sum = 0;
    for (let i = 0; i < E; i++) {
      const e = mask[row + i] ? Math.exp(z[row + i] - zmax) : 0;
      g[row + i] = e;
      sum += e;
    }
    for (let i = 0; i < E; i++) g[row + i] /= sum;
  }
}

/**
 * Forward. Writes g1, g2 (T, H, E). In train mode the updated BatchNorm running stats go to `next` when given
 * (same keys as `state`).
 */
export function monetRouterForward(
  g1: Float64Array, // (T, H, E) out
  g2: Float64Array, // (T, H, E) out
  x: Float64Array, // (T, d)
  params: MonetRouterParams,
  state: MonetRouterState,
  next: MonetRouterState | null,
  dims: MonetRouterDims,
  opts: MonetRouterOptions,
): MonetRouterSaved {
  const { T, d, H, E } = dims;
  const sigma = monetSigma(opts.topk, E);
  const bnOpts = { mode: opts.mode, eps: opts.bnEps, momentum: opts.bnMomentum };
  const bnDims = { O: T, C: H, I: E }; // each head is one channel over T·E entries
  const masks: Uint8Array[] = [];
  const bns: BatchNormSaved[] = [];
  for (const r of [1, 2] as const) {
    const W = params[`w${r}.weight`]; // (H·E, d)
    const z = new Float64Array(T * H * E); // (T, H, E) raw logits
    linearForward(z, x, W, null, T, d, H * E);
    const n = new Float64Array(T * H * E); // (T, H, E) normalised logits
    const bn = batchnormForward(
      n,
      z,
      null,
      null,
      state[`norm${r}.running_mean`],
      state[`norm${r}.running_var`],
      next ? next[`norm${r}.running_mean`] : null,
      next ? next[`norm${r}.running_var`] : null,
      bnDims,
      bnOpts,
    );
    const mask = new Uint8Array(T * H * E); // (T, H, E)
    monetSelectSoftmax(r === 1 ? g1 : g2, mask, z, n, sigma, T, H, E);
    masks.push(mask);
    bns.push(bn);
  }
  return { g1, g2, mask1: masks[0], mask2: masks[1], sigma, bn1: bns[0], bn2: bns[1] };
}

/**
 * Backward (accumulates). dg1, dg2 (T, H, E) are the total upstream gradients of the routing weights: with router
 * groups, the caller sums the contributions of every layer that reuses this router (and the aux losses) first.
 */
export function monetRouterBackward(
  dx: Float64Array, // (T, d) accumulated
  grads: MonetRouterParams, // dw1, dw2 (H·E, d) accumulated
  dg1: Float64Array, // (T, H, E)
  dg2: Float64Array, // (T, H, E)
  x: Float64Array, // (T, d)
  params: MonetRouterParams,
  saved: MonetRouterSaved,
  dims: MonetRouterDims,
): void {
  const { T, d, H, E } = dims;
  const HE = H * E;
  const dz = new Float64Array(HE); // (H, E) one token's logit gradient
  for (const r of [1, 2] as const) {
    const g = r === 1 ? saved.g1 : saved.g2;
    const dg = r === 1 ? dg1 : dg2;
    const W = params[`w${r}.weight`]; // (H·E, d)
    const dW = grads[`w${r}.weight`]; // (H·E, d)
    for (let t = 0; t < T; t++) {
      // softmax backward per head, over the selected entries (g = 0 elsewhere makes dz = 0 there)
      for (let h = 0; h < H; h++) {
        const row = (t * H + h) * E;
        let dot = 0;
        for (let i = 0; i < E; i++) dot += g[row + i] * dg[row + i];
        for (let i = 0; i < E; i++) dz[h * E + i] = g[row + i] * (dg[row + i] - dot);
      }
      // linear backward: dW += dz ⊗ x_t;  dx_t += Wᵀ dz
      const xt = t * d;
      for (let o = 0; o < HE; o++) {
        const dzo = dz[o];
        if (dzo === 0) continue; // unselected experts: exactly zero gradient
        const wo = o * d;
        for (let c = 0; c < d; c++) {
          dW[wo + c] += dzo * x[xt + c];
          dx[xt + c] += dzo * W[wo + c];
        }
      }
    }
  }
}

/** The router's hyperparameters (config keys as in the official `MonetConfig`); src/kinds/monet.ts reads and
 * checks them. */
export interface MonetRouterConfig {
  d: number; // hidden_size
  E: number; // moe_experts = √N
  H: number; // moe_heads
  topk: number; // moe_topk
  mode: BatchNormMode; // train | eval
  bnEps: number; // bn_eps, default 1e-5 (PyTorch BatchNorm1d)
  bnMomentum: number; // bn_momentum, default 0.1
}

/** A router config is also the forward's options (topk, mode, bnEps, bnMomentum). */
export function monetRouterOptions(c: MonetRouterConfig): MonetRouterOptions {
  return { topk: c.topk, mode: c.mode, bnEps: c.bnEps, bnMomentum: c.bnMomentum };
}

/** The BatchNorm buffers' names (PyTorch init: running_mean 0, running_var 1). */
export const MONET_ROUTER_STATE = [
  'norm1.running_mean',
  'norm1.running_var',
  'norm2.running_mean',
  'norm2.running_var',
] as const;

/** Buffers for the running statistics a train-mode forward writes (each (H)). */
export function newMonetRouterState(H: number): MonetRouterState {
  const st: Params = {};
  for (const name of MONET_ROUTER_STATE) st[name] = new Float64Array(H); // (H)
  return st as MonetRouterState;
}
