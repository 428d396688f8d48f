// Monet router (SPEC §1.3, backward §1.10), float64, forward and backward.
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
// to exactly 0 there, which is what skipping them here computes (SPEC §1.11 pitfall 1).

import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import { u8, type TensorMap } from '../src/tensor.ts';
import { batchnormForward, type BatchNormMode, type BatchNormSaved } from './batchnorm.ts';
import {
  CaseInputs,
  cfgEnum,
  cfgInt,
  cfgNum,
  gradBuffer,
  gradParams,
  put,
  putGrads,
  readParams,
  type Config,
  type ParamSpec,
  type Params,
} from './common.ts';
import { linearForward } from './linear.ts';
import { relGap } from './margins.ts';
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

/** What forward saves for backward (only g is needed: the softmax Jacobian is expressed through g). */
export interface MonetRouterSaved {
  g1: Float64Array; // (T, H, E)
  g2: Float64Array; // (T, H, E)
  mask1: Uint8Array; // (T, H, E) selection masks (also the idx.mask1/idx.mask2 fixture outputs)
  mask2: Uint8Array; // (T, H, E)
  z1: Float64Array; // (T, H, E) raw logits and BatchNorm outputs, kept for the routing-margin report only
  z2: Float64Array; // (T, H, E)
  n1: Float64Array; // (T, H, E)
  n2: Float64Array; // (T, H, E)
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
  const ns: Float64Array[] = [];
  const zs: Float64Array[] = [];
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
    zs.push(z);
    ns.push(n);
    bns.push(bn);
  }
  return {
    g1,
    g2,
    mask1: masks[0],
    mask2: masks[1],
    z1: zs[0],
    z2: zs[1],
    n1: ns[0],
    n2: ns[1],
    sigma,
    bn1: bns[0],
    bn2: bns[1],
  };
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

/**
 * The smallest relative routing margin (margins.ts relGap) of one router's decisions, for every (t, h):
 *   - each normalised logit against sigma (decides both the mask and whether the clamp is active);
 *   - where max_i n < sigma, only the argmax is selected: the max against the runner-up;
 *   - with `amb`, where ≥ 2 experts are selected, the largest selected raw logit against the second largest (the
 *     ambiguity loss takes max_i g, whose argmax must not flip under a finite-difference step).
 * A decision with margin ≥ 1e-3 cannot flip under the perturbations of a finite-difference check or a float32
 * rounding (FIXTURES.md "Routing boundaries"). The same three checks as the PyTorch fixture writer.
 */
export function monetRouterMargin(
  n: Float64Array, // (T, H, E) normalised logits
  z: Float64Array | null, // (T, H, E) raw logits (needed with amb)
  mask: Uint8Array | null, // (T, H, E) selection (needed with amb)
  sigma: number,
  T: number,
  H: number,
  E: number,
): number {
  let worst = Infinity;
  for (let th = 0; th < T * H; th++) {
    const row = th * E;
    let n1 = -Infinity; // largest and second largest normalised logit
    let n2 = -Infinity;
    let z1 = -Infinity; // largest and second largest selected raw logit
    let z2 = -Infinity;
    let selected = 0;
    for (let i = 0; i < E; i++) {
      const v = n[row + i];
      worst = Math.min(worst, relGap(v, sigma));
      if (v > n1) [n1, n2] = [v, n1];
      else if (v > n2) n2 = v;
      if (z && mask?.[row + i]) {
        selected++;
        const zv = z[row + i];
        if (zv > z1) [z1, z2] = [zv, z1];
        else if (zv > z2) z2 = zv;
      }
    }
    if (n1 < sigma) worst = Math.min(worst, relGap(n1, n2));
    if (z && mask && selected >= 2) worst = Math.min(worst, relGap(z1, z2));
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration, parameter/state specs and the `monet-router` fixture case.

/** The router's part of a Monet config (keys as in the official `MonetConfig`). */
export interface MonetRouterConfig {
  d: number; // hidden_size
  E: number; // moe_experts = √N
  H: number; // moe_heads
  topk: number; // moe_topk
  mode: BatchNormMode; // train | eval
  bnEps: number; // bn_eps, default 1e-5 (PyTorch BatchNorm1d)
  bnMomentum: number; // bn_momentum, default 0.1
}

export function parseMonetRouterConfig(config: Config, where: string): MonetRouterConfig {
  const c: MonetRouterConfig = {
    d: cfgInt(config, 'hidden_size', where),
    E: cfgInt(config, 'moe_experts', where, 2),
    H: cfgInt(config, 'moe_heads', where),
    topk: cfgInt(config, 'moe_topk', where),
    mode: cfgEnum(config, 'mode', ['train', 'eval'] as const, where),
    bnEps: cfgNum(config, 'bn_eps', where, 1e-5),
    bnMomentum: cfgNum(config, 'bn_momentum', where, 0.1),
  };
  if (c.topk >= c.E)
    throw new Error(
      `${where}: config.moe_topk: expected < moe_experts = ${c.E} (sigma = Φ⁻¹(1 − topk/E) needs 0 < topk/E < 1), found ${c.topk}`,
    );
  return c;
}

export function monetRouterOptions(c: MonetRouterConfig): MonetRouterOptions {
  return { topk: c.topk, mode: c.mode, bnEps: c.bnEps, bnMomentum: c.bnMomentum };
}

/** Parameter specs, named relative to the router (`w1.weight`, `w2.weight`). */
export function monetRouterParamSpecs(c: MonetRouterConfig): ParamSpec[] {
  return [
    { name: 'w1.weight', shape: [c.H * c.E, c.d], init: 'normal' },
    { name: 'w2.weight', shape: [c.H * c.E, c.d], init: 'normal' },
  ];
}

/** BatchNorm buffers (PyTorch init: running_mean 0, running_var 1). */
export const MONET_ROUTER_STATE = [
  'norm1.running_mean',
  'norm1.running_var',
  'norm2.running_mean',
  'norm2.running_var',
] as const;
export function monetRouterStateSpecs(
  c: MonetRouterConfig,
): Array<{ name: string; shape: number[]; init: 'zeros' | 'ones' }> {
  return MONET_ROUTER_STATE.map((name) => ({
    name,
    shape: [c.H],
    init: name.endsWith('mean') ? ('zeros' as const) : ('ones' as const),
  }));
}

/** A state record from a case (`state.<prefix>norm1.running_mean` …); required in eval mode, PyTorch's init if absent in train mode. */
export function readMonetRouterState(inp: CaseInputs, c: MonetRouterConfig, prefix: string): MonetRouterState {
  const st: Params = {};
  for (const name of MONET_ROUTER_STATE) {
    const full = `state.${prefix}${name}`;
    if (inp.has(full) || c.mode === 'eval') st[name] = inp.f64(full, [c.H]);
    else st[name] = name.endsWith('mean') ? new Float64Array(c.H) : new Float64Array(c.H).fill(1); // (H)
  }
  return st as MonetRouterState;
}

export function newMonetRouterState(H: number): MonetRouterState {
  const st: Params = {};
  for (const name of MONET_ROUTER_STATE) st[name] = new Float64Array(H); // (H)
  return st as MonetRouterState;
}

/**
 * Fixture case `monet-router`: in.x (T, d), in.dg1, in.dg2 (T, H, E) → out.g1, out.g2, idx.mask1, idx.mask2,
 * next.norm*.running_* (train mode), grad.in.x, grad.param.w1.weight, grad.param.w2.weight.
 * Objective L = Σ out.g1 ⊙ in.dg1 + Σ out.g2 ⊙ in.dg2.
 */
export function runMonetRouterCase(c: FixtureCase, opts?: RunOptions): TensorMap {
  const inp = new CaseInputs(c);
  const cfg = parseMonetRouterConfig(c.config, inp.where);
  const { d, H, E } = cfg;
  const T = inp.shapeOf('in.x')[0];
  const x = inp.f64('in.x', [T, d]); // (T, d)
  const specs = monetRouterParamSpecs(cfg);
  const p = readParams(inp, specs) as MonetRouterParams;
  const state = readMonetRouterState(inp, cfg, '');
  const wantGrad = !opts?.forwardOnly;
  const dg1 = wantGrad || inp.has('in.dg1') ? inp.f64('in.dg1', [T, H, E]) : null; // (T, H, E)
  const dg2 = wantGrad || inp.has('in.dg2') ? inp.f64('in.dg2', [T, H, E]) : null; // (T, H, E)
  inp.assertAllUsed();

  const dims = { T, d, H, E };
  const g1 = new Float64Array(T * H * E); // (T, H, E)
  const g2 = new Float64Array(T * H * E); // (T, H, E)
  const next = cfg.mode === 'train' ? newMonetRouterState(H) : null;
  const saved = monetRouterForward(g1, g2, x, p, state, next, dims, monetRouterOptions(cfg));
  const out: TensorMap = new Map();
  put(out, 'out.g1', [T, H, E], g1);
  put(out, 'out.g2', [T, H, E], g2);
  out.set('idx.mask1', u8([T, H, E], saved.mask1));
  out.set('idx.mask2', u8([T, H, E], saved.mask2));
  if (next) for (const name of MONET_ROUTER_STATE) put(out, `next.${name}`, [H], next[name]);
  if (!wantGrad) return out;

  const dx = gradBuffer(opts, 'grad.in.x', [T, d]); // (T, d)
  const g = gradParams(opts, specs) as MonetRouterParams;
  monetRouterBackward(dx, g, dg1!, dg2!, x, p, saved, dims);
  put(out, 'grad.in.x', [T, d], dx);
  putGrads(out, specs, g);
  return out;
}

/** The smallest margin of both routers of a forward pass, including the ambiguity argmax (see monetRouterMargin). */
export function monetRouterSavedMargin(saved: MonetRouterSaved, dims: MonetRouterDims): number {
  const { T, H, E } = dims;
  return Math.min(
    monetRouterMargin(saved.n1, saved.z1, saved.mask1, saved.sigma, T, H, E),
    monetRouterMargin(saved.n2, saved.z2, saved.mask2, saved.sigma, T, H, E),
  );
}
