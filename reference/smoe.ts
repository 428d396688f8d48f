// Sparse mixture of experts (SMoE) baseline, docs/spec.md §3.4–3.5: top-k then softmax (Mixtral), dropless, Switch
// load-balance loss with f normalised by T·k, router z-loss. float64, forward and backward.
//
// Dimension legend:
//   T tokens, d model dim (hidden_size), E experts (num_experts), k experts per token (top_k),
//   F expert hidden units (intermediate_size), n_e tokens routed to expert e
//
// Forward, per token x:
//   z = W_g x                                  (E)     gate.weight (E, d), no bias
//   S = top-k indices of z                     (k)     descending score; ties → lower index (deterministic)
//   w = softmax(z[S])                          (k)     = softmax over all E, keep top-k, renormalise
//   y = Σ_{s} w_s · E_{S_s}(x)                 (d)     every routed token is processed (dropless, no capacity)
// Note (docs/spec.md §3.1): with top_k = 1 the renormalised gate is identically 1, so the router learns only from the
// aux losses. The definition is kept as is for every k (one rule, comparable fixtures); use k ≥ 2 to train a router.
// Experts use Mixtral's names and are the dense FFN of dense-ffn.ts:
//   swiglu: E_e(x) = w2(silu(w1 x) ⊙ w3 x)      w1, w3 (F, d); w2 (d, F)
//   other:  E_e(x) = w2(act(w1 x))               w1 (F, d); w2 (d, F)
// Aux losses (raw values; the coefficients live in config.aux and multiply them in the objective):
//   p_t = softmax(z_t) over all E;  P_i = mean_t p_ti;  f_i = count_i / (T·k)   (Σ_i f_i = 1)
//   loss_balance = E · Σ_i f_i P_i       (1 at perfect balance; HF normalises f by T only, which is k× larger)
//   loss_z       = mean_t (logsumexp_j z_tj)²
//
// Backward (docs/spec.md §3.5):
//   dw_s = dy · E_{S_s}(x);   dz[S] = w ⊙ (dw − Σ w ⊙ dw);  dz = 0 off S    (top-k and f get no gradient)
//   + balance coef · (E/T) · p_tj · (f_j − Σ_i f_i p_ti)                   (through P only)
//   + z coef · (2/T) · lse_t · p_tj
//   dW_g += dzᵀ x;  dx += dz W_g + Σ_s w_s (∂E_s/∂x)ᵀ dy;  expert e's weights get gradient from its tokens only.

import type { Params } from './common.ts';
import {
  denseFfnBackward,
  denseFfnForward,
  type DenseActivation,
  type DenseFfnConfig,
  type DenseFfnSaved,
  type DenseFfnWeights,
} from './dense-ffn.ts';
import { linearBackward, linearForward } from './linear.ts';
import { logsumexp, softmaxForward } from './softmax.ts';

export interface SmoeConfig {
  d: number; // hidden_size
  F: number; // intermediate_size (per expert)
  E: number; // num_experts
  k: number; // top_k
  activation: DenseActivation;
}

/** Coefficients of the aux losses in the objective (∂L/∂loss_balance, ∂L/∂loss_z). */
export interface SmoeAuxScale {
  balance: number;
  z: number;
}

/** One expert's share of the batch: which tokens it got, in which slot, and what its MLP saved. */
export interface SmoeExpertSaved {
  rows: Int32Array; // (n_e) token index t of each routed row
  slots: Int32Array; // (n_e) slot s (0..k−1) of expert e in that token's top-k list
  xe: Float64Array; // (n_e, d) gathered inputs
  ye: Float64Array; // (n_e, d) expert outputs E_e(x_t), needed for dw
  mlp: DenseFfnSaved;
}

/** What forward saves for backward. */
export interface SmoeSaved {
  z: Float64Array; // (T, E) router logits
  p: Float64Array; // (T, E) softmax over all experts (aux losses only)
  lse: Float64Array; // (T) logsumexp of z (z-loss)
  topk: Int32Array; // (T, k) selected experts, descending score, ties → lower index
  w: Float64Array; // (T, k) gate weights softmax(z[S])
  f: Float64Array; // (E) fraction of the T·k routing slots that went to each expert
  P: Float64Array; // (E) mean router probability
  experts: SmoeExpertSaved[]; // (E)
  lossBalance: number;
  lossZ: number;
}

/** Mixtral names → the dense FFN's roles: w1 is the gate (swiglu) or the only input projection; w3 the up; w2 down. */
function expertRoles(cfg: SmoeConfig, rec: Params, e: number): DenseFfnWeights {
  const swiglu = cfg.activation === 'swiglu';
  return {
    gate: swiglu ? rec[`experts.${e}.w1.weight`] : null,
    up: rec[swiglu ? `experts.${e}.w3.weight` : `experts.${e}.w1.weight`],
    down: rec[`experts.${e}.w2.weight`],
  };
}

const mlpConfig = (cfg: SmoeConfig): DenseFfnConfig => ({ d: cfg.d, F: cfg.F, activation: cfg.activation });

/**
 * Top-k of one row by repeated selection: slot j takes the largest not-yet-chosen score; scanning upward with a
 * strict `>` makes the lowest index win every tie. (k passes over E; naive on purpose.)
 */
export function topkIndices(
  out: Int32Array, // (k) indices, descending score
  row: Float64Array, // (E)
  k: number,
): void {
  const E = row.length;
  const taken = new Uint8Array(E); // (E)
  for (let j = 0; j < k; j++) {
    let best = -1;
    for (let e = 0; e < E; e++) if (!taken[e] && (best < 0 || row[e] > row[best])) best = e;
    taken[best] = 1;
    out[j] = best;
  }
}

export function smoeForward(
  y: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: Params, // gate.weight, experts.<e>.w{1,2,3}.weight
  cfg: SmoeConfig,
  T: number,
): SmoeSaved {
  const { d, E, k } = cfg;

  // Router: logits, full softmax and logsumexp (for the aux losses), top-k and gate weights.
  const z = new Float64Array(T * E); // (T, E)
  linearForward(z, x, p['gate.weight'], null, T, d, E);
  const probs = new Float64Array(T * E); // (T, E)
  softmaxForward(probs, z, T, E);
  const lse = new Float64Array(T); // (T)
  logsumexp(lse, z, T, E);
  const topk = new Int32Array(T * k); // (T, k)
  const w = new Float64Array(T * k); // (T, k)
  const sel = new Float64Array(k); // (k) selected logits of one token
  for (let t = 0; t < T; t++) {
    const idx = topk.subarray(t * k, t * k + k);
    topkIndices(idx, z.subarray(t * E, t * E + E), k);
    for (let s = 0; s < k; s++) sel[s] = z[t * E + idx[s]];
    softmaxForward(w.subarray(t * k, t * k + k), sel, 1, k);
  }

  // Aux losses.
  const f = new Float64Array(E); // (E)
  const P = new Float64Array(E); // (E)
  for (let j = 0; j < T * k; j++) f[topk[j]] += 1 / (T * k);
  for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) P[e] += probs[t * E + e] / T;
  let lossBalance = 0;
  for (let e = 0; e < E; e++) lossBalance += E * f[e] * P[e];
  let lossZ = 0;
  for (let t = 0; t < T; t++) lossZ += (lse[t] * lse[t]) / T;

  // Experts: gather each expert's tokens, run its MLP on them, scatter-add the weighted outputs.
  y.fill(0);
  const experts: SmoeExpertSaved[] = [];
  for (let e = 0; e < E; e++) {
    const rowsL: number[] = [];
    const slotsL: number[] = [];
    for (let t = 0; t < T; t++)
      for (let s = 0; s < k; s++)
        if (topk[t * k + s] === e) {
          rowsL.push(t);
          slotsL.push(s);
        }
    const n = rowsL.length;
    const rows = Int32Array.from(rowsL); // (n_e)
    const slots = Int32Array.from(slotsL); // (n_e)
    const xe = new Float64Array(n * d); // (n_e, d)
    for (let r = 0; r < n; r++) xe.set(x.subarray(rows[r] * d, rows[r] * d + d), r * d);
    const ye = new Float64Array(n * d); // (n_e, d)
    const mlp = denseFfnForward(ye, xe, expertRoles(cfg, p, e), mlpConfig(cfg), n);
    for (let r = 0; r < n; r++) {
      const gate = w[rows[r] * k + slots[r]];
      for (let i = 0; i < d; i++) y[rows[r] * d + i] += gate * ye[r * d + i];
    }
    experts.push({ rows, slots, xe, ye, mlp });
  }
  return { z, p: probs, lse, topk, w, f, P, experts, lossBalance, lossZ };
}

/** Accumulates into dx (if not null) and into g (null: no parameter gradients). */
export function smoeBackward(
  dx: Float64Array | null, // (T, d)
  g: Params | null,
  dy: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: Params,
  saved: SmoeSaved,
  cfg: SmoeConfig,
  T: number,
  aux: SmoeAuxScale,
): void {
  const { d, E, k } = cfg;
  const { w, topk, f } = saved;

  // Through the experts: dw (gradient of each gate weight) and each expert's backward on its own rows.
  const dw = new Float64Array(T * k); // (T, k)
  for (let e = 0; e < E; e++) {
    const ex = saved.experts[e];
    const n = ex.rows.length;
    if (n === 0) continue;
    const dye = new Float64Array(n * d); // (n_e, d) gradient of this expert's outputs
    for (let r = 0; r < n; r++) {
      const t = ex.rows[r];
      const slot = t * k + ex.slots[r];
      let dot = 0;
      for (let i = 0; i < d; i++) {
        dot += dy[t * d + i] * ex.ye[r * d + i];
        dye[r * d + i] = w[slot] * dy[t * d + i];
      }
      dw[slot] = dot;
    }
    const dxe = dx ? new Float64Array(n * d) : null; // (n_e, d)
    const gr = g ? expertRoles(cfg, g, e) : { gate: null, up: null, down: null };
    denseFfnBackward(dxe, gr, dye, ex.xe, expertRoles(cfg, p, e), ex.mlp, mlpConfig(cfg), n);
    if (dx && dxe) for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) dx[ex.rows[r] * d + i] += dxe[r * d + i];
  }

  // Router logits: softmax over the selected k (the LM path) plus the aux-loss paths over all E.
  const dz = new Float64Array(T * E); // (T, E)
  for (let t = 0; t < T; t++) {
    let dot = 0; // Σ_s w_s dw_s
    for (let s = 0; s < k; s++) dot += w[t * k + s] * dw[t * k + s];
    for (let s = 0; s < k; s++) dz[t * E + topk[t * k + s]] += w[t * k + s] * (dw[t * k + s] - dot);
    let fp = 0; // Σ_i f_i p_ti
    for (let e = 0; e < E; e++) fp += f[e] * saved.p[t * E + e];
    for (let e = 0; e < E; e++) {
      const pe = saved.p[t * E + e];
      dz[t * E + e] += aux.balance * (E / T) * pe * (f[e] - fp) + aux.z * (2 / T) * saved.lse[t] * pe;
    }
  }
  linearBackward(dx, g ? g['gate.weight'] : null, null, dz, x, p['gate.weight'], T, d, E);
}
