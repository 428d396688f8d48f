// Softmax over the last axis, float64, forward and backward.
//
// Dimension legend:
//   N  rows
//   C  entries per row (classes)
//
// Forward (stable): p_c = exp(z_c − max z) / Σ_c' exp(z_c' − max z). Subtracting the max changes nothing
// mathematically and keeps exp() from overflowing.
// Backward: with the output p saved, dz_c = p_c · (dp_c − Σ_c' p_c' dp_c').
// Saved state: the output probabilities (the caller keeps `out`).

export function softmaxForward(
  out: Float64Array, // (N, C)
  inp: Float64Array, // (N, C)
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let mx = -Infinity;
    for (let c = 0; c < C; c++) if (inp[o + c] > mx) mx = inp[o + c];
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const e = Math.exp(inp[o + c] - mx);
      out[o + c] = e;
      sum += e;
    }
    for (let c = 0; c < C; c++) out[o + c] /= sum;
  }
}

/** log Σ_c exp(z_c) per row, computed stably. */
export function logsumexp(
  out: Float64Array, // (N)
  inp: Float64Array, // (N, C)
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let mx = -Infinity;
    for (let c = 0; c < C; c++) if (inp[o + c] > mx) mx = inp[o + c];
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(inp[o + c] - mx);
    out[n] = mx + Math.log(sum);
  }
}

/** Accumulates dinp += J_softmaxᵀ · dout, using the saved output probabilities. */
export function softmaxBackward(
  dinp: Float64Array, // (N, C)
  dout: Float64Array, // (N, C)
  out: Float64Array, // (N, C) the forward output p
  N: number,
  C: number,
): void {
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let dot = 0; // Σ_c p_c dp_c
    for (let c = 0; c < C; c++) dot += out[o + c] * dout[o + c];
    for (let c = 0; c < C; c++) dinp[o + c] += out[o + c] * (dout[o + c] - dot);
  }
}
