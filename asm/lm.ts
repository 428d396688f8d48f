// Decoder-LM kernels: embedding gather / scatter-add, RoPE, causal attention with grouped KV heads, cross-entropy.
//
// Dimension legend: B sequences, S positions, T = B·S, V vocabulary, nH query heads, nKV key/value heads,
// hd head dim; q, out (B, S, nH·hd); k, v (B, S, nKV·hd); probs (B, nH, S, S).

import { addf, expShiftSum, ld, ldi, st } from './common';
import { gemm, gemmScratchFloats } from './matmul';

export function gatherRows(dst: usize, table: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) memory.copy(dst + (<usize>(r * cols) << 2), table + (<usize>(ldi(idx, r) * cols) << 2), <usize>cols << 2);
}

export function scatterAddRows(dst: usize, src: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const d = ldi(idx, r) * cols;
    for (let c = 0; c < cols; c++) addf(dst, d + c, ld(src, r * cols + c));
  }
}

/**
 * sign = +1: forward rotation into y (=); sign = −1: the backward, rotation by −angle ADDED into y.
 * cos/sin are computed once per (position, frequency) and applied to every sequence and head.
 */
function rotate(y: usize, x: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64, sign: f64): void {
  const half = hd / 2;
  for (let s = 0; s < S; s++)
    for (let i = 0; i < half; i++) {
      const ang = <f64>s * Math.pow(theta, (-2.0 * i) / hd);
      const cs = Math.cos(ang), sn = sign * Math.sin(ang);
      for (let b = 0; b < B; b++)
        for (let h = 0; h < heads; h++) {
          const o = ((b * S + s) * heads + h) * hd;
          const x1 = <f64>ld(x, o + i), x2 = <f64>ld(x, o + half + i);
          if (sign > 0) {
            st(y, o + i, <f32>(x1 * cs - x2 * sn));
            st(y, o + half + i, <f32>(x2 * cs + x1 * sn));
          } else {
            addf(y, o + i, <f32>(x1 * cs - x2 * sn));
            addf(y, o + half + i, <f32>(x2 * cs + x1 * sn));
          }
        }
    }
}

export function rope(y: usize, x: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64): void {
  rotate(y, x, B, S, heads, hd, theta, 1);
}

export function ropeBackward(dx: usize, dy: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64): void {
  rotate(dx, dy, B, S, heads, hd, theta, -1);
}

// Attention is written as per-(sequence, head) matrix products on the packed GEMM of matmul.ts (strided views of
// q, k, v: row stride nH·hd or nKV·hd), so almost all of its work runs in the SIMD micro-kernel:
//   scores = Q·Kᵀ/√hd (S×S; the causal upper triangle is computed and then zeroed by the softmax), P = softmax rows,
//   out = P·V.   Backward: dP = dO·Vᵀ;  dV += Pᵀ·dO;  dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √hd;  dQ += dS·K;  dK += dSᵀ·Q.

/** Floats of scratch attention / attentionBackward need: the GEMM's packing space, then one S×S block. */
export function attentionScratchFloats(S: i32, hd: i32): i32 {
  return gemmScratchFloats(max(S, hd)) + S * S;
}

/** Causal softmax of each row i of an S×S block in place (entries j > i become 0), scaled scores in. */
function causalSoftmax(p: usize, S: i32): void {
  for (let i = 0; i < S; i++) {
    const row = i * S;
    let mx: f32 = -Infinity;
    for (let j = 0; j <= i; j++) mx = max(mx, ld(p, row + j));
    const pr = p + (<usize>row << 2);
    const inv = <f32>(1.0 / expShiftSum(pr, pr, mx, i + 1));
    for (let j = 0; j <= i; j++) st(pr, j, ld(pr, j) * inv);
    for (let j = i + 1; j < S; j++) st(pr, j, 0);
  }
}

/** scratch: attentionScratchFloats(S, hd) words. */
export function attention(out: usize, probs: usize, q: usize, k: usize, v: usize, B: i32, S: i32, nH: i32, nKV: i32, hd: i32, scratch: usize): void {
  const group = nH / nKV;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hd));
  const qs = nH * hd, ks = nKV * hd; // row strides of q/out and of k/v
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      const kh = h / group;
      const qb = q + (<usize>(b * S * qs + h * hd) << 2);
      const kb = k + (<usize>(b * S * ks + kh * hd) << 2);
      const vb = v + (<usize>(b * S * ks + kh * hd) << 2);
      const pb = probs + (<usize>((b * nH + h) * S * S) << 2);
      // scores (S, S) = Q (S, hd) · Kᵀ
      gemm(S, S, hd, qb, qs, 1, kb, 1, ks, pb, S, false, scratch);
      for (let i = 0; i < S * S; i++) st(pb, i, ld(pb, i) * scale);
      causalSoftmax(pb, S);
      // out (S, hd) = P (S, S) · V (S, hd)
      gemm(S, hd, S, pb, S, 1, vb, ks, 1, out + (<usize>(b * S * qs + h * hd) << 2), qs, false, scratch);
    }
}

/** scratch: attentionScratchFloats(S, hd) words. */
export function attentionBackward(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize, probs: usize,
  B: i32, S: i32, nH: i32, nKV: i32, hd: i32, scratch: usize): void {
  const group = nH / nKV;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hd));
  const qs = nH * hd, ks = nKV * hd;
  const dP = scratch + (<usize>gemmScratchFloats(max(S, hd)) << 2); // (S, S), becomes dS in place
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      const kh = h / group;
      const qo = <usize>(b * S * qs + h * hd) << 2, ko = <usize>(b * S * ks + kh * hd) << 2;
      const pb = probs + (<usize>((b * nH + h) * S * S) << 2);
      // dP (S, S) = dO (S, hd) · Vᵀ;   dV += Pᵀ · dO
      gemm(S, S, hd, dout + qo, qs, 1, v + ko, 1, ks, dP, S, false, scratch);
      gemm(S, hd, S, pb, 1, S, dout + qo, qs, 1, dv + ko, ks, true, scratch);
      // dS = P ⊙ (dP − Σ_j P·dP) / √hd, row by row (0 above the diagonal, where P = 0)
      for (let i = 0; i < S; i++) {
        const row = i * S;
        let dot: f64 = 0;
        for (let j = 0; j <= i; j++) dot += <f64>ld(pb, row + j) * <f64>ld(dP, row + j);
        for (let j = 0; j < S; j++) st(dP, row + j, j <= i ? <f32>(<f64>ld(pb, row + j) * (<f64>ld(dP, row + j) - dot)) * scale : 0);
      }
      // dQ += dS · K;   dK += dSᵀ · Q
      gemm(S, hd, S, dP, S, 1, k + ko, ks, 1, dq + qo, qs, true, scratch);
      gemm(S, hd, S, dP, 1, S, q + qo, qs, 1, dk + ko, ks, true, scratch);
    }
}

export function crossEntropy(loss: usize, probs: usize, logits: usize, tokens: usize, B: i32, S: i32, V: i32, scale: f64): void {
  let total: f64 = 0;
  for (let r = 0; r < B * S; r++) {
    const o = r * V;
    let mx: f32 = -Infinity;
    for (let j = 0; j < V; j++) mx = max(mx, ld(logits, o + j));
    const pr = probs + (<usize>o << 2);
    const s = expShiftSum(pr, logits + (<usize>o << 2), mx, V); // probs holds exp(logit − max) for now
    const lse = <f64>mx + Math.log(s);
    const inv = <f32>(1.0 / s);
    for (let j = 0; j < V; j++) st(pr, j, ld(pr, j) * inv);
    if (r % S < S - 1) total += lse - <f64>ld(logits, o + ldi(tokens, r + 1));
  }
  addf(loss, 0, <f32>(scale * total));
}

export function crossEntropyBackward(dlogits: usize, probs: usize, tokens: usize, B: i32, S: i32, V: i32, scale: f32): void {
  for (let r = 0; r < B * S; r++) {
    if (r % S == S - 1) continue;
    const tgt = ldi(tokens, r + 1), o = r * V;
    for (let j = 0; j < V; j++) addf(dlogits, o + j, scale * (ld(probs, o + j) - (j == tgt ? <f32>1 : <f32>0)));
  }
}
