// Linear layer (fully connected), float64, forward and backward.
//
// Dimension legend:
//   N  rows (tokens; any leading dims flattened)
//   I  in_features
//   O  out_features
//
// PyTorch layout: weight is (O, I), so y = x·Wᵀ + b, i.e. y[n, o] = Σ_i x[n, i]·W[o, i] + b[o].
// Checkpoints (Hugging Face, fixtures) store Linear weights this way, so the reference does too.
//
// Saved state: none of its own. Backward needs the forward INPUT x (for dW) and the weight (for dx); the caller
// already keeps both, so there is nothing extra to save.

export function linearForward(
  out: Float64Array, // (N, O)
  inp: Float64Array, // (N, I)
  weight: Float64Array, // (O, I)
  bias: Float64Array | null, // (O) or null
  N: number,
  I: number,
  O: number,
): void {
  for (let n = 0; n < N; n++) {
    const x = n * I; // offset of row n of inp
    for (let o = 0; o < O; o++) {
      const w = o * I; // offset of row o of weight
      let acc = bias ? bias[o] : 0;
      for (let i = 0; i < I; i++) acc += inp[x + i] * weight[w + i];
      out[n * O + o] = acc;
    }
  }
}

/**
 * Backward. Accumulates (+=) into every gradient buffer that is not null:
 *   dinp[n, i]     += Σ_o dout[n, o]·W[o, i]      (dx = dy·W)
 *   dweight[o, i]  += Σ_n dout[n, o]·x[n, i]      (dW = dyᵀ·x)
 *   dbias[o]       += Σ_n dout[n, o]
 */
export function linearBackward(
  dinp: Float64Array | null, // (N, I)
  dweight: Float64Array | null, // (O, I)
  dbias: Float64Array | null, // (O)
  dout: Float64Array, // (N, O)
  inp: Float64Array, // (N, I)
  weight: Float64Array, // (O, I)
  N: number,
  I: number,
  O: number,
): void {
  for (let n = 0; n < N; n++) {
    const x = n * I;
    for (let o = 0; o < O; o++) {
      const g = dout[n * O + o];
      if (g === 0) continue; // exact skip: contributes nothing (common for masked rows)
      const w = o * I;
      if (dinp) for (let i = 0; i < I; i++) dinp[x + i] += g * weight[w + i];
      if (dweight) for (let i = 0; i < I; i++) dweight[w + i] += g * inp[x + i];
      if (dbias) dbias[o] += g;
    }
  }
}
