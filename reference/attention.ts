// Causal multi-head scaled dot-product attention with grouped KV heads (GQA), float64, forward and backward.
//
// Dimension legend:
//   B  sequences, S positions per sequence
//   nH query heads, nKV key/value heads (nH divisible by nKV), hd head dim
//   group = nH / nKV query heads share one KV head: query head h reads KV head floor(h / group)
//
// Layouts (all row-major, straight from the q/k/v projections after RoPE):
//   q  (B, S, nH, hd)    k, v  (B, S, nKV, hd)    out (B, S, nH, hd)    att (B, nH, S, S)
//
// Forward, for every sequence b, head h, query position s (causal: only keys s' ≤ s are visible):
//   score[s'] = q[s]·k[s'] / √hd                      for s' ≤ s
//   P[s, :]   = softmax(score)                       (entries s' > s are exactly 0)
//   out[s]    = Σ_{s' ≤ s} P[s, s'] · v[s']
// Written with explicit loops, as in nanoGPT's "manual" attention, to show there is nothing hidden in it.
//
// Backward (P saved):
//   dP[s, s'] = dout[s]·v[s'];            dv[s'] += P[s, s']·dout[s]
//   dscore    = P ⊙ (dP − Σ_s' P dP)      (softmax backward, row by row)
//   dq[s]    += Σ_s' dscore[s, s']·k[s'] / √hd;    dk[s'] += dscore[s, s']·q[s] / √hd

/**
 * What forward saves for backward: the attention probabilities (zero above the diagonal). q, k, v are kept by the
 * caller.
 */
export interface AttentionSaved {
  att: Float64Array; // (B, nH, S, S)
}

export interface AttentionDims {
  B: number;
  S: number;
  nH: number;
  nKV: number;
  hd: number;
}

export function attentionForward(
  out: Float64Array, // (B, S, nH, hd)
  q: Float64Array, // (B, S, nH, hd)
  k: Float64Array, // (B, S, nKV, hd)
  v: Float64Array, // (B, S, nKV, hd)
  dims: AttentionDims,
): AttentionSaved {
  const { B, S, nH, nKV, hd } = dims;
  if (nH % nKV !== 0)
    throw new Error(`attention: num_attention_heads ${nH} is not a multiple of num_key_value_heads ${nKV}`);
  const group = nH / nKV;
  const scale = 1 / Math.sqrt(hd);
  const att = new Float64Array(B * nH * S * S); // (B, nH, S, S)
  const score = new Float64Array(S); // (S) one row of scores
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      for (let s = 0; s < S; s++) {
        const qo = ((b * S + s) * nH + h) * hd; // q[b, s, h, :]
        let mx = -Infinity;
        for (let t = 0; t <= s; t++) {
          const ko = ((b * S + t) * nKV + kvh) * hd; // k[b, t, kvh, :]
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += q[qo + i] * k[ko + i];
          score[t] = dot * scale;
          if (score[t] > mx) mx = score[t];
        }
        const ao = ((b * nH + h) * S + s) * S; // att[b, h, s, :]
        let sum = 0;
        for (let t = 0; t <= s; t++) {
          const e = Math.exp(score[t] - mx);
          att[ao + t] = e;
          sum += e;
        }
        for (let t = 0; t <= s; t++) att[ao + t] /= sum;
        // out[b, s, h, :] = Σ_t P[s, t] v[b, t, kvh, :]
        for (let i = 0; i < hd; i++) out[qo + i] = 0;
        for (let t = 0; t <= s; t++) {
          const p = att[ao + t];
          const vo = ((b * S + t) * nKV + kvh) * hd;
          for (let i = 0; i < hd; i++) out[qo + i] += p * v[vo + i];
        }
      }
    }
  return { att };
}

/** Accumulates into dq, dk, dv. */
export function attentionBackward(
  dq: Float64Array, // (B, S, nH, hd)
  dk: Float64Array, // (B, S, nKV, hd)
  dv: Float64Array, // (B, S, nKV, hd)
  dout: Float64Array, // (B, S, nH, hd)
  q: Float64Array, // (B, S, nH, hd)
  k: Float64Array, // (B, S, nKV, hd)
  v: Float64Array, // (B, S, nKV, hd)
  saved: AttentionSaved,
  dims: AttentionDims,
): void {
  const { B, S, nH, nKV, hd } = dims;
  const group = nH / nKV;
  const scale = 1 / Math.sqrt(hd);
  const att = saved.att;
  const dP = new Float64Array(S); // (S) gradient of one row of P
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      const kvh = Math.floor(h / group);
      for (let s = 0; s < S; s++) {
        const qo = ((b * S + s) * nH + h) * hd;
        const ao = ((b * nH + h) * S + s) * S;
        let dot = 0; // Σ_t P[s, t] dP[s, t]
        for (let t = 0; t <= s; t++) {
          const vo = ((b * S + t) * nKV + kvh) * hd;
          let g = 0;
          for (let i = 0; i < hd; i++) {
            g += dout[qo + i] * v[vo + i];
            dv[vo + i] += att[ao + t] * dout[qo + i];
          }
          dP[t] = g;
          dot += att[ao + t] * g;
        }
        for (let t = 0; t <= s; t++) {
          const ds = att[ao + t] * (dP[t] - dot) * scale; // ∂L/∂(q·k) for the pair (s, t)
          const ko = ((b * S + t) * nKV + kvh) * hd;
          for (let i = 0; i < hd; i++) {
            dq[qo + i] += ds * k[ko + i];
            dk[ko + i] += ds * q[qo + i];
          }
        }
      }
    }
}
