// RMSNorm (Llama), float64, forward and backward.
//
// Dimension legend:
//   N  rows (tokens)
//   C  channels (model dim d)
//
// Forward:   r = 1 / sqrt(mean_c(x²) + eps);   y = x · r · w
// Backward (per row; g = w ⊙ dy is the gradient w.r.t. the normalised x̂ = x·r):
//   dx = r·g − x · r³ · (Σ_c g_c x_c) / C          (r depends on every x_c: ∂r/∂x_c = −r³ x_c / C)
//   dw += dy ⊙ x · r                                 (summed over rows)
// Hugging Face Llama computes the same thing (in float32 before casting back); no mean is subtracted.

/** What forward saves for backward: the reciprocal RMS of each row. The input x itself is kept by the caller. */
export interface RmsNormSaved {
  rstd: Float64Array; // (N)
}

export function rmsnormForward(
  out: Float64Array, // (N, C)
  inp: Float64Array, // (N, C)
  weight: Float64Array, // (C)
  N: number,
  C: number,
  eps: number,
): RmsNormSaved {
  const rstd = new Float64Array(N); // (N)
  for (let n = 0; n < N; n++) {
    const x = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += inp[x + c] * inp[x + c];
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[x + c] = inp[x + c] * r * weight[c];
  }
  return { rstd };
}

/** Accumulates into dinp and dweight (either may be null). */
export function rmsnormBackward(
  dinp: Float64Array | null, // (N, C)
  dweight: Float64Array | null, // (C)
  dout: Float64Array, // (N, C)
  inp: Float64Array, // (N, C)
  weight: Float64Array, // (C)
  saved: RmsNormSaved,
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const x = n * C;
    const r = saved.rstd[n];
    if (dweight) for (let c = 0; c < C; c++) dweight[c] += dout[x + c] * inp[x + c] * r;
    if (!dinp) continue;
    let dot = 0; // Σ_c (w ⊙ dy)_c · x_c
    for (let c = 0; c < C; c++) dot += weight[c] * dout[x + c] * inp[x + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dinp[x + c] += r * weight[c] * dout[x + c] - inp[x + c] * k;
  }
}
