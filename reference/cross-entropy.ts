// Mean next-token cross-entropy, float64, forward and backward.
//
// Dimension legend:
//   B  sequences, S positions per sequence, V vocabulary size
//
// The logits at position s of a sequence predict the token at position s+1, so positions 0..S−2 each give one
// prediction and the last position gives none. The loss is the mean over the B·(S−1) predictions:
//   L = −1/(B(S−1)) · Σ_b Σ_{s<S−1} log p[b, s, tokens[b, s+1]],   p = softmax(logits[b, s, :])
// Backward: dlogits[b, s, :] = (p − onehot(target)) / (B(S−1)) · dL for s < S−1, and 0 at s = S−1.

import { softmaxForward } from './softmax.ts';

/** What forward saves: the softmax probabilities of every position (the last position's are unused). */
export interface CrossEntropySaved {
  probs: Float64Array; // (B, S, V)
}

export function crossEntropyForward(
  logits: Float64Array, // (B, S, V)
  tokens: Int32Array, // (B, S)
  B: number,
  S: number,
  V: number,
): { loss: number; saved: CrossEntropySaved } {
  if (S < 2) throw new Error(`cross-entropy: next-token loss needs sequences of length ≥ 2, found S = ${S}`);
  const probs = new Float64Array(B * S * V); // (B, S, V)
  softmaxForward(probs, logits, B * S, V);
  let sum = 0;
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S - 1; s++) {
      const target = tokens[b * S + s + 1];
      sum -= Math.log(probs[(b * S + s) * V + target]);
    }
  return { loss: sum / (B * (S - 1)), saved: { probs } };
}

/** Accumulates dlogits += ∂(dloss·L)/∂logits. */
export function crossEntropyBackward(
  dlogits: Float64Array, // (B, S, V)
  saved: CrossEntropySaved,
  tokens: Int32Array, // (B, S)
  B: number,
  S: number,
  V: number,
  dloss = 1,
): void {
  const scale = dloss / (B * (S - 1));
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S - 1; s++) {
      const o = (b * S + s) * V;
      const target = tokens[b * S + s + 1];
      for (let v = 0; v < V; v++) dlogits[o + v] += scale * (saved.probs[o + v] - (v === target ? 1 : 0));
    }
}
