// Token embedding (lookup table), float64, forward and backward.
//
// Dimension legend:
//   N  tokens (B·S flattened)
//   V  vocabulary size
//   d  model dim
//
// out[n, :] = wte[tokens[n], :]. Backward scatter-adds the upstream gradient into the looked-up rows; a token that
// appears several times receives the sum of its gradients.
// Saved state: none; backward needs only the token ids, which the caller keeps.

export function embeddingForward(
  out: Float64Array, // (N, d)
  tokens: Int32Array, // (N)
  wte: Float64Array, // (V, d)
  N: number,
  V: number,
  d: number,
): void {
  for (let n = 0; n < N; n++) {
    const tok = tokens[n];
    if (!(tok >= 0 && tok < V)) throw new Error(`embedding: token id ${tok} at position ${n} is outside [0, ${V})`);
    out.set(wte.subarray(tok * d, tok * d + d), n * d);
  }
}

/** dwte[tokens[n], :] += dout[n, :] (accumulates). */
export function embeddingBackward(
  dwte: Float64Array, // (V, d)
  dout: Float64Array, // (N, d)
  tokens: Int32Array, // (N)
  N: number,
  d: number,
): void {
  for (let n = 0; n < N; n++) {
    const row = tokens[n] * d;
    for (let i = 0; i < d; i++) dwte[row + i] += dout[n * d + i];
  }
}
