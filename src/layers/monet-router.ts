// Monet router (docs/spec.md §1.3, backward §1.10) and aux losses (§1.7) on a Device (float32) — twins of
// reference/monet-router.ts and reference/monet-aux.ts.
//
// Dimension legend: T tokens, d model dim, H expert heads, E experts per side = √N
//
// For r ∈ {1, 2}: z_r = w_r x (T, H, E); BatchNorm statistics per head over (t, i) (train: batch, running stats
// updated; eval: running stats); monetRoute: threshold s = min(max_i n_i, sigma), mask = n ≥ s (ties all kept),
// g_r = softmax of the RAW logits over the selected entries. sigma = Φ⁻¹(1 − topk/E).
// Backward: only the selected raw logits get gradient (softmax backward; g = 0 elsewhere), then the Linear.
// Aux losses (raw values): L_unif = −1/(2HE) Σ_r Σ_{h,i} log(ḡ_r + eps), L_amb = 1/(2HT) Σ_r Σ_{t,h} (1 − max_i g_r).

import type { Scope } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import type { MonetRouterConfig as RefMonetRouterConfig } from '../../reference/monet-router.ts';
import { monetSigma } from '../../reference/normal.ts';
import { linearBackward, linearForward, type Weight } from './common.ts';

/** The reference's router config (src/kinds/monet.ts reads it) plus sigma = Φ⁻¹(1 − topk/E), computed once. */
export interface MonetRouterConfig extends RefMonetRouterConfig {
  sigma: number;
}

export function deviceRouterConfig(c: RefMonetRouterConfig): MonetRouterConfig {
  return { ...c, sigma: monetSigma(c.topk, c.E) };
}

/** The router's matrices as `W` (forward: float32 or bf16 kept packed; backward: float32). */
export interface MonetRouterWeights<W extends Weight = F32> {
  w1: W; // (H·E, d)
  w2: W; // (H·E, d)
}
export interface MonetRouterGrads {
  w1: F32 | null;
  w2: F32 | null;
}
/** norm1/norm2 running statistics (H each): read in eval mode, updated in place in train mode. */
export interface MonetRouterState {
  mean1: F32;
  var1: F32;
  mean2: F32;
  var2: F32;
}

export interface MonetRouterSaved {
  g1: F32; // (T, H, E)
  g2: F32; // (T, H, E)
  mask1: I32; // (T, H, E) idx.mask1
  mask2: I32; // (T, H, E) idx.mask2
}

export function monetRouterForward(
  sc: Scope,
  x: F32,
  p: MonetRouterWeights<Weight>,
  state: MonetRouterState,
  cfg: MonetRouterConfig,
  T: number,
): MonetRouterSaved {
  const kn = sc.dev.kernels;
  const { d, H, E } = cfg;
  const out: F32[] = [];
  const masks: I32[] = [];
  for (const r of [1, 2] as const) {
    const W = r === 1 ? p.w1 : p.w2;
    const runMean = r === 1 ? state.mean1 : state.mean2;
    const runVar = r === 1 ? state.var1 : state.var2;
    const z = sc.f32(T * H * E); // (T, H, E)
    linearForward(kn, z, x, W, null, T, d, H * E);
    let mean = runMean,
      variance = runVar;
    if (cfg.mode === 'train') {
      mean = sc.f32(H);
      variance = sc.f32(H);
      kn.groupStats(mean, variance, z, { outer: T, groups: H, inner: E });
      if (T * E < 2)
        throw new Error(`monet router (train mode): BatchNorm needs more than 1 value per head, found T·E = ${T * E}`);
      kn.runningStatsUpdate(runMean, runVar, mean, variance, { groups: H, count: T * E, momentum: cfg.bnMomentum });
    }
    const g = sc.f32(T * H * E),
      mask = sc.i32(T * H * E);
    kn.monetRoute(g, mask, z, mean, variance, { T, H, E, sigma: cfg.sigma, eps: cfg.bnEps });
    out.push(g);
    masks.push(mask);
  }
  return { g1: out[0], g2: out[1], mask1: masks[0], mask2: masks[1] };
}

/** Backward (accumulates). dg1, dg2 (T, H, E): the total upstream gradient (every layer of a router group + aux). */
export function monetRouterBackward(
  sc: Scope,
  dx: F32 | null,
  g: MonetRouterGrads,
  dg1: F32,
  dg2: F32,
  x: F32,
  p: MonetRouterWeights,
  s: MonetRouterSaved,
  cfg: MonetRouterConfig,
  T: number,
): void {
  const kn = sc.dev.kernels;
  const { d, H, E } = cfg;
  for (const r of [1, 2] as const) {
    const dz = sc.f32(T * H * E);
    kn.softmaxBackward(dz, r === 1 ? s.g1 : s.g2, r === 1 ? dg1 : dg2, { rows: T * H, n: E });
    linearBackward(kn, dx, r === 1 ? g.w1 : g.w2, null, dz, x, r === 1 ? p.w1 : p.w2, T, d, H * E);
  }
}

/** Aux losses of one router into 1-element tensors (+= scale·value: the LM averages over routers with scale). */
export function monetAuxForward(
  sc: Scope,
  unif: F32,
  amb: F32,
  s: MonetRouterSaved,
  H: number,
  E: number,
  T: number,
  eps: number,
  scale = 1,
): void {
  const kn = sc.dev.kernels;
  for (const g of [s.g1, s.g2]) {
    kn.monetUnifLoss(unif, g, { T, H, E, eps, scale });
    kn.monetAmbLoss(amb, g, { T, H, E, scale });
  }
}

/** dg_r += coefUnif·∂L_unif/∂g_r + coefAmb·∂L_amb/∂g_r (coefficients include any averaging scale). */
export function monetAuxBackward(
  sc: Scope,
  dg1: F32,
  dg2: F32,
  s: MonetRouterSaved,
  H: number,
  E: number,
  T: number,
  eps: number,
  coefUnif: number,
  coefAmb: number,
): void {
  const kn = sc.dev.kernels;
  for (const [dg, g] of [
    [dg1, s.g1],
    [dg2, s.g2],
  ] as const) {
    if (coefUnif !== 0) kn.monetUnifBackward(dg, g, { T, H, E, eps, scale: coefUnif });
    if (coefAmb !== 0) kn.monetAmbBackward(dg, g, { T, H, E, scale: coefAmb });
  }
}
