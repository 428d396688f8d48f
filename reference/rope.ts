// Rotary position embedding (RoPE), Hugging Face Llama "rotate-half" convention, float64, forward and backward.
//
// Dimension legend:
//   B  sequences, S positions per sequence (positions 0..S−1, restarting in every sequence)
//   nh heads in this tensor (query heads or KV heads), hd head dim (even), half = hd/2
//
// Layout: x is (B, S, nh, hd) row-major, which is exactly the (B·S, nh·hd) output of the q/k projections.
// Frequencies: inv_freq[i] = rope_theta^(−2i/hd) for i < half; angle θ(s, i) = s · inv_freq[i].
// Rotate-half pairs channel i with channel i + half (NOT adjacent channels as in the original RoPE paper):
//   y[i]        = x[i]·cos θ_i − x[i+half]·sin θ_i
//   y[i+half]   = x[i+half]·cos θ_i + x[i]·sin θ_i
// This is HF's  q·cos + rotate_half(q)·sin  with cos/sin = cat(freqs, freqs) and rotate_half(x) = cat(−x2, x1).
// Backward is the transposed rotation (rotation by −θ):
//   dx[i]       =  dy[i]·cos θ_i + dy[i+half]·sin θ_i
//   dx[i+half]  = −dy[i]·sin θ_i + dy[i+half]·cos θ_i
// Saved state: none; the tables depend only on (S, hd, theta) and are recomputed.

/** cos/sin tables of the angles s·inv_freq[i]. */
export interface RopeTables {
  cos: Float64Array; // (S, half)
  sin: Float64Array; // (S, half)
}

export function ropeTables(S: number, hd: number, theta: number): RopeTables {
  if (hd % 2 !== 0) throw new Error(`rope: head dim must be even, found ${hd}`);
  const half = hd / 2;
  const cos = new Float64Array(S * half); // (S, half)
  const sin = new Float64Array(S * half); // (S, half)
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / Math.pow(theta, (2 * i) / hd);
    for (let s = 0; s < S; s++) {
      const a = s * invFreq;
      cos[s * half + i] = Math.cos(a);
      sin[s * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

export function ropeForward(
  out: Float64Array, // (B, S, nh, hd)
  inp: Float64Array, // (B, S, nh, hd)
  tab: RopeTables,
  B: number,
  S: number,
  nh: number,
  hd: number,
): void {
  const half = hd / 2;
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S; s++)
      for (let h = 0; h < nh; h++) {
        const o = ((b * S + s) * nh + h) * hd; // offset of this (token, head) vector
        for (let i = 0; i < half; i++) {
          const c = tab.cos[s * half + i];
          const sn = tab.sin[s * half + i];
          const x1 = inp[o + i];
          const x2 = inp[o + i + half];
          out[o + i] = x1 * c - x2 * sn;
          out[o + i + half] = x2 * c + x1 * sn;
        }
      }
}

/** Accumulates dinp += Rᵀ·dout. */
export function ropeBackward(
  dinp: Float64Array, // (B, S, nh, hd)
  dout: Float64Array, // (B, S, nh, hd)
  tab: RopeTables,
  B: number,
  S: number,
  nh: number,
  hd: number,
): void {
  const half = hd / 2;
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S; s++)
      for (let h = 0; h < nh; h++) {
        const o = ((b * S + s) * nh + h) * hd;
        for (let i = 0; i < half; i++) {
          const c = tab.cos[s * half + i];
          const sn = tab.sin[s * half + i];
          const d1 = dout[o + i];
          const d2 = dout[o + i + half];
          dinp[o + i] += d1 * c + d2 * sn;
          dinp[o + i + half] += -d1 * sn + d2 * c;
        }
      }
}
