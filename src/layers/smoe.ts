// Sparse mixture of experts (docs/spec.md §3.4: top-k then softmax, dropless, Mixtral names) on a Device (float32).
//
// Dimension legend: T tokens, d model dim, F expert hidden size, E experts, k experts per token, P = T·k pairs
//
// Forward:
//   z = gate x (T, E);  (idx, val) = top-k of z per token (ties → lower expert);  w = softmax(val) (T, k)
//   Dispatch without data-dependent shapes: the P (token, slot) pairs are sorted by expert ON THE DEVICE (moeSort),
//   giving `order` (sorted row → pair), `pos` (pair → sorted row) and per-expert row offsets. The token rows are
//   gathered into xs (P, d) in that order, every expert runs on its contiguous block of rows (grouped matmuls with
//   the expert weights stacked (E, ·, ·)), and the results are combined back per token: y[t] = Σ_s w[t,s]·ys[pos].
//   Expert e: E_e(x) = w2( silu(w1 x) ⊙ w3 x ) for swiglu, else w2( act(w1 x) ).
// Aux losses (raw values; coefficients come from config.aux): L_bal = E·Σ_i f_i P_i with f_i = count_i/(T·k),
//   P_i = mean_t softmax(z_t)_i;  L_z = mean_t logsumexp(z_t)².
// Backward: combine → experts (grouped) → dispatch; dw → softmax backward → the selected logits; aux gradients on
//   all E logits; then the gate Linear.

import type { Scope } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { linearBackward, linearForward } from './common.ts';
import type { SmoeConfig } from '../../reference/smoe.ts';

/** The reference's config type (hidden_size, intermediate_size, num_experts, top_k, activation). */
export type { SmoeConfig } from '../../reference/smoe.ts';

/** Expert weights stacked over experts (the case runner / LM stacks `experts.<e>.w*.weight`). */
export interface SmoeWeights {
  gate: F32; // (E, d)
  w1: F32; // (E, F, d)
  w2: F32; // (E, d, F)
  w3: F32 | null; // (E, F, d) swiglu only
}
export interface SmoeGrads {
  gate: F32 | null;
  w1: F32 | null;
  w2: F32 | null;
  w3: F32 | null;
}

/** What forward saves for backward. */
export interface SmoeSaved {
  z: F32; // (T, E) gate logits
  idx: I32; // (T, k) selected experts, descending logit (the idx.topk fixture output)
  w: F32; // (T, k) routing weights
  order: I32; // (P) sorted row → pair t·k + s
  pos: I32; // (P) pair → sorted row
  offsets: I32; // (E + 1) rows of expert e: offsets[e] ≤ r < offsets[e+1]
  xs: F32; // (P, d) dispatched token rows
  h1: F32; // (P, F) w1 xs
  h3: F32 | null; // (P, F) w3 xs (swiglu)
  a: F32; // (P, F) hidden activation
  ys: F32; // (P, d) expert outputs
  probs: F32; // (T, E) full softmax of z (aux losses)
  lse: F32; // (T) logsumexp of z (z-loss)
}

/** Aux-loss outputs (1-element tensors) and how much of each to add (coefficient·scale), for backward. */
export interface SmoeAux {
  balance: F32; // (1)
  z: F32; // (1)
}

export function smoeForward(
  sc: Scope,
  y: F32,
  aux: SmoeAux,
  x: F32,
  w: SmoeWeights,
  cfg: SmoeConfig,
  T: number,
  auxScale = 1,
): SmoeSaved {
  const kn = sc.dev.kernels;
  const { d, F, E, k } = cfg;
  const P = T * k;
  const z = sc.f32(T * E); // (T, E)
  linearForward(kn, z, x, w.gate, null, T, d, E);
  const idx = sc.i32(P); // (T, k)
  const val = sc.f32(P); // (T, k)
  kn.topkRows(idx, val, z, { rows: T, n: E, k });
  const wt = sc.f32(P); // (T, k)
  kn.softmaxRows(wt, val, { rows: T, n: k });
  const order = sc.i32(P),
    pos = sc.i32(P),
    offsets = sc.i32(E + 1);
  kn.moeSort(order, pos, offsets, idx, { P, E });
  const xs = sc.f32(P * d); // (P, d)
  kn.moeDispatch(xs, x, order, { P, k, d });
  const h1 = sc.f32(P * F); // (P, F)
  kn.matmulGrouped(h1, xs, w.w1, offsets, { P, N: F, K: d, G: E, transB: true, accumulate: false });
  const a = sc.f32(P * F); // (P, F)
  let h3: F32 | null = null;
  if (cfg.activation === 'swiglu') {
    if (!w.w3) throw new Error("smoe (swiglu): expected the experts' w3 weights, found none");
    h3 = sc.f32(P * F);
    kn.matmulGrouped(h3, xs, w.w3, offsets, { P, N: F, K: d, G: E, transB: true, accumulate: false });
    kn.swiglu(a, h1, h3, { n: P * F });
  } else {
    kn.activation(a, h1, { n: P * F, kind: cfg.activation });
  }
  const ys = sc.f32(P * d); // (P, d)
  kn.matmulGrouped(ys, a, w.w2, offsets, { P, N: d, K: F, G: E, transB: true, accumulate: false });
  kn.fill(y, { n: T * d, value: 0 });
  kn.moeCombine(y, ys, wt, pos, { T, k, d });
  const probs = sc.f32(T * E),
    lse = sc.f32(T);
  kn.smoeAux(aux.balance, aux.z, probs, lse, z, idx, { T, E, k, scale: auxScale });
  return { z, idx, w: wt, order, pos, offsets, xs, h1, h3, a, ys, probs, lse };
}

/**
 * Backward (accumulates). coefBalance / coefZ: the objective's weight on each aux loss (config.aux times any
 * averaging scale the caller applied in forward).
 */
export function smoeBackward(
  sc: Scope,
  dx: F32 | null,
  g: SmoeGrads,
  dy: F32,
  x: F32,
  w: SmoeWeights,
  s: SmoeSaved,
  cfg: SmoeConfig,
  T: number,
  coefBalance: number,
  coefZ: number,
): void {
  const kn = sc.dev.kernels;
  const { d, F, E, k } = cfg;
  const P = T * k;
  // y[t] = Σ_s w[t,s]·ys[pos[t,s]]
  const dys = sc.f32(P * d),
    dw = sc.f32(P);
  kn.moeCombineBackward(dys, dw, dy, s.ys, s.w, s.pos, { T, k, d });
  // ys = a·w2[e]ᵀ  (grouped):  dw2[e] += dysᵀ·a;  da = dys·w2[e]
  if (g.w2) kn.matmulGroupedTN(g.w2, dys, s.a, s.offsets, { P, N: d, K: F, G: E });
  const da = sc.f32(P * F);
  kn.matmulGrouped(da, dys, w.w2, s.offsets, { P, N: F, K: d, G: E, transB: false, accumulate: false });
  const dh1 = sc.f32(P * F);
  const dxs = sc.f32(P * d);
  if (cfg.activation === 'swiglu') {
    const dh3 = sc.f32(P * F);
    kn.swigluBackward(dh1, dh3, da, s.h1, s.h3!, { n: P * F });
    if (g.w3) kn.matmulGroupedTN(g.w3, dh3, s.xs, s.offsets, { P, N: F, K: d, G: E });
    kn.matmulGrouped(dxs, dh3, w.w3!, s.offsets, { P, N: d, K: F, G: E, transB: false, accumulate: true });
  } else {
    kn.activationBackward(dh1, da, s.h1, { n: P * F, kind: cfg.activation });
  }
  if (g.w1) kn.matmulGroupedTN(g.w1, dh1, s.xs, s.offsets, { P, N: F, K: d, G: E });
  kn.matmulGrouped(dxs, dh1, w.w1, s.offsets, { P, N: d, K: F, G: E, transB: false, accumulate: true });
  if (dx) kn.moeDispatchBackward(dx, dxs, s.pos, { T, k, d });
  // w = softmax(val), val = z[idx]:  dz[idx] += softmax backward;  plus the aux gradients on every logit
  const dval = sc.f32(P);
  kn.softmaxBackward(dval, s.w, dw, { rows: T, n: k });
  const dz = sc.f32(T * E);
  kn.topkRowsBackward(dz, dval, s.idx, { rows: T, n: E, k });
  kn.smoeAuxBackward(dz, s.probs, s.lse, s.idx, { T, E, k, coefBalance, coefZ });
  linearBackward(kn, dx, g.gate, null, dz, x, w.gate, T, d, E);
}
