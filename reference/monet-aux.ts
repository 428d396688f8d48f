// Monet auxiliary losses (docs/spec.md §1.7, gradients §1.10), float64.
//
// Dimension legend:   T tokens   H expert heads   E experts per side = √N
//
// Both losses act on the routing weights g1, g2 (T, H, E) of one router (with router groups: once per router,
// and the LM averages them over routers).
//
// Uniformity (paper Eq. 16, "KL divergence between a uniform distribution and the routing probabilities"):
//   ḡ_r[h,i] = (1/T) Σ_t g_r[t,h,i]                        batch-mean routing distribution of head h
//   L_unif   = −1/(2HE) Σ_h Σ_i log(ḡ1[h,i] + ε) − 1/(2HE) Σ_h Σ_j log(ḡ2[h,j] + ε)
// Our reading (the training code is not public; docs/spec.md §1.7): ĝ in Eq. 16 is the batch mean ḡ. Per-token g has
// exact zeros (unselected experts), so log ĝ per token would be −∞; the batch mean reaches its minimum ln E at perfect
// balance, matching the paper's Table 7 values just above ln 512.
// ε = `unif_eps` (default 1e-10) is added INSIDE the log: with small batches an expert may be selected by no token,
// making ḡ = 0 and the paper's formula +∞. Where ḡ > 0, ε shifts each log by about ε/ḡ (negligible for ε = 1e-10).
//
// Ambiguity (paper Eq. 17), per token, averaged over the T tokens:
//   L_amb = (1/T) Σ_t [ 1/(2H) Σ_h (1 − max_i g1[t,h,i]) + 1/(2H) Σ_h (1 − max_j g2[t,h,j]) ]
//
// Gradients (only w.r.t. g; they continue through the router's softmax backward):
//   dL_unif/dg_r[t,h,i] = −1/(2HE) · 1/(T·(ḡ_r[h,i] + ε))
//   dL_amb/dg_r[t,h,i*] = −1/(2H·T) at i* = argmax_i g_r[t,h,i] (the FIRST index on ties), 0 elsewhere.
// (max is piecewise linear; at an exact tie we take the subgradient of the first maximiser, as torch.max does.)

export interface MonetAuxDims {
  T: number;
  H: number;
  E: number;
}

/** What forward saves for backward. */
export interface MonetAuxSaved {
  gbar1: Float64Array; // (H, E) batch-mean routing weights of router 1
  gbar2: Float64Array; // (H, E)
  argmax1: Int32Array; // (T, H) first index of the max of g1[t,h,:]
  argmax2: Int32Array; // (T, H)
  eps: number;
}

export interface MonetAuxLosses {
  unif: number;
  amb: number;
}

export function monetAuxForward(
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  dims: MonetAuxDims,
  eps = 1e-10,
): { losses: MonetAuxLosses; saved: MonetAuxSaved } {
  const { T, H, E } = dims;
  const gbar1 = new Float64Array(H * E); // (H, E)
  const gbar2 = new Float64Array(H * E); // (H, E)
  const argmax1 = new Int32Array(T * H); // (T, H)
  const argmax2 = new Int32Array(T * H); // (T, H)
  let unif = 0;
  let amb = 0;
  for (const [g, gbar, argmax] of [
    [g1, gbar1, argmax1],
    [g2, gbar2, argmax2],
  ] as const) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const row = (t * H + h) * E;
        let best = 0; // first index of the max (strict > keeps the earlier index on ties)
        for (let i = 0; i < E; i++) {
          gbar[h * E + i] += g[row + i] / T;
          if (g[row + i] > g[row + best]) best = i;
        }
        argmax[t * H + h] = best;
        amb += (1 - g[row + best]) / (2 * H * T);
      }
    }
    for (let k = 0; k < H * E; k++) unif -= Math.log(gbar[k] + eps) / (2 * H * E);
  }
  return { losses: { unif, amb }, saved: { gbar1, gbar2, argmax1, argmax2, eps } };
}

/** Backward (accumulates): dg_r += coefUnif·dL_unif/dg_r + coefAmb·dL_amb/dg_r. */
export function monetAuxBackward(
  dg1: Float64Array, // (T, H, E)
  dg2: Float64Array, // (T, H, E)
  coefUnif: number,
  coefAmb: number,
  saved: MonetAuxSaved,
  dims: MonetAuxDims,
): void {
  const { T, H, E } = dims;
  for (const [dg, gbar, argmax] of [
    [dg1, saved.gbar1, saved.argmax1],
    [dg2, saved.gbar2, saved.argmax2],
  ] as const) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        const row = (t * H + h) * E;
        if (coefUnif !== 0) {
          for (let i = 0; i < E; i++) dg[row + i] += -coefUnif / (2 * H * E) / (T * (gbar[h * E + i] + saved.eps));
        }
        dg[row + argmax[t * H + h]] += -coefAmb / (2 * H * T);
      }
    }
  }
}
