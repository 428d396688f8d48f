// Decoder-LM kernels: embedding gather / scatter-add, RoPE, causal attention with grouped KV heads, cross-entropy.
//
// Dimension legend: B sequences, S positions, T = B·S, V vocabulary, nH query heads, nKV key/value heads,
// hd head dim; q, out (B, S, nH·hd); k, v (B, S, nKV·hd); probs (B, nH, S, S).

import { addf, exp4, expShiftSum, ld, ldi, st } from './common';
import { gemmMasked, gemmScratchFloats, MASK_K_FROM, MASK_K_UPTO, MASK_OUT_LOWER } from './matmul';

export function gatherRows(dst: usize, table: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++)
    memory.copy(dst + (<usize>(r * cols) << 2), table + (<usize>(ldi(idx, r) * cols) << 2), <usize>cols << 2);
}

export function scatterAddRows(dst: usize, src: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const d = ldi(idx, r) * cols;
    for (let c = 0; c < cols; c++) addf(dst, d + c, ld(src, r * cols + c));
  }
}

/** Floats of scratch rope / ropeBackward need, and of a ropeTable: the cos and sin tables, S·hd/2 float64 each. */
export function ropeScratchFloats(S: i32, hd: i32): i32 {
  return 2 * S * hd;
}

/**
 * The rotation's cos and sin for positions 0 ≤ s < S and frequencies 0 ≤ i < hd/2, float64: cos at
 * table + 8·(s·hd/2 + i), sin S·hd/2 float64 further (ropeScratchFloats(S, hd) floats in all). A table for S
 * positions holds the first S' rows of a table for any S' < S, so one table serves every shorter sequence.
 */
export function ropeTable(table: usize, S: i32, hd: i32, theta: f64): void {
  const half = hd / 2;
  const cosT = table, sinT = table + (<usize>(S * half) << 3);
  for (let s = 0; s < S; s++)
    for (let i = 0; i < half; i++) {
      const ang = <f64>s * Math.pow(theta, (-2.0 * i) / hd);
      store<f64>(cosT + (<usize>(s * half + i) << 3), Math.cos(ang));
      store<f64>(sinT + (<usize>(s * half + i) << 3), Math.sin(ang));
    }
}

/**
 * sign = +1: forward rotation into y (=); sign = −1: the backward, rotation by −angle ADDED into y. `table` is a
 * ropeTable of Stab ≥ S positions, applied to every sequence and head.
 */
export function ropeApply(y: usize, x: usize, B: i32, S: i32, heads: i32, hd: i32, sign: f64, table: usize,
  Stab: i32): void {
  const half = hd / 2;
  const cosT = table, sinT = table + (<usize>(Stab * half) << 3);
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S; s++) {
      const cs = cosT + (<usize>(s * half) << 3), sn = sinT + (<usize>(s * half) << 3);
      for (let h = 0; h < heads; h++) {
        const o = ((b * S + s) * heads + h) * hd;
        for (let i = 0; i < half; i++) {
          const c = load<f64>(cs + (<usize>i << 3)), n = sign * load<f64>(sn + (<usize>i << 3));
          const x1 = <f64>ld(x, o + i), x2 = <f64>ld(x, o + half + i);
          if (sign > 0) {
            st(y, o + i, <f32>(x1 * c - x2 * n));
            st(y, o + half + i, <f32>(x2 * c + x1 * n));
          } else {
            addf(y, o + i, <f32>(x1 * c - x2 * n));
            addf(y, o + half + i, <f32>(x2 * c + x1 * n));
          }
        }
      }
    }
}

/** ropeTable into scratch, then ropeApply. */
function rotate(y: usize, x: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64, sign: f64, scratch: usize): void {
  ropeTable(scratch, S, hd, theta);
  ropeApply(y, x, B, S, heads, hd, sign, scratch, S);
}

/** scratch: ropeScratchFloats(S, hd) floats. */
export function rope(y: usize, x: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64, scratch: usize): void {
  rotate(y, x, B, S, heads, hd, theta, 1, scratch);
}

/** scratch: ropeScratchFloats(S, hd) floats. */
export function ropeBackward(dx: usize, dy: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64,
  scratch: usize): void {
  rotate(dx, dy, B, S, heads, hd, theta, -1, scratch);
}

// Attention is written as per-(sequence, head) matrix products on the packed GEMM of matmul.ts (strided views of
// q, k, v: row stride nH·hd or nKV·hd), so almost all of its work runs in the SIMD micro-kernel:
//   scores = Q·Kᵀ/√hd (S×S), P = causal softmax of the rows, out = P·V.
//   Backward: dP = dO·Vᵀ;  dV += Pᵀ·dO;  dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √hd;  dQ += dS·K;  dK += dSᵀ·Q.
// Causality is used to skip work (gemmMasked in matmul.ts): score tiles wholly above the diagonal are not computed,
// and P·V, dS·K (row i sums over j ≤ i), Pᵀ·dO and dSᵀ·Q (row j sums over i ≥ j) skip the terms that are exact
// zeros; each operand is packed once per (sequence, head).
// The (sequence, head) pairs are independent: a call computes the pairs p0 ≤ p < p1 (the loader splits them
// between threads). The backward pairs are (sequence, key/value head): the query heads of one group add into the
// same dK, dV, so one call owns them all.

/** Floats of scratch attention / attentionBackward need: the GEMM's packing space, then one S×S block. */
export function attentionScratchFloats(S: i32, hd: i32): i32 {
  return gemmScratchFloats(max(S, hd)) + S * S;
}

/** max of p[0..n), n ≥ 1. */
function rowMax(p: usize, n: i32): f32 {
  let j = 0;
  let mx: f32 = -Infinity;
  if (n >= 4) {
    let m4 = v128.load(p);
    for (j = 4; j + 4 <= n; j += 4) m4 = f32x4.max(m4, v128.load(p + (<usize>j << 2)));
    mx = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)),
      max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
  }
  for (; j < n; j++) mx = max(mx, ld(p, j));
  return mx;
}

/** p[0..n) *= s. */
function rowScale(p: usize, s: f32, n: i32): void {
  const v = f32x4.splat(s);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(p + (<usize>j << 2), f32x4.mul(v128.load(p + (<usize>j << 2)), v));
  for (; j < n; j++) st(p, j, ld(p, j) * s);
}

/**
 * Rows i0 ≤ i < i1 of an S×S block hold raw scores Q·Kᵀ in their columns j ≤ i: scale them, take the causal
 * softmax, and zero the columns i < j < S.
 */
function causalSoftmax(p: usize, S: i32, i0: i32, i1: i32, scale: f32): void {
  const s4 = f32x4.splat(scale);
  for (let i = i0; i < i1; i++) {
    const pr = p + (<usize>(i * S) << 2);
    const n = i + 1;
    // p_j = exp((s_j − max s)·scale) (scale > 0, so the max of the scaled scores is the scaled max), then / Σ p
    const mx = rowMax(pr, n), m4 = f32x4.splat(mx);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      const e = exp4(f32x4.mul(f32x4.sub(v128.load(pr + o), m4), s4));
      v128.store(pr + o, e);
      acc = f32x4.add(acc, e);
    }
    let sum: f64 = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) +
      <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
    for (; j < n; j++) {
      const e = <f32>Math.exp(<f64>((ld(pr, j) - mx) * scale));
      st(pr, j, e);
      sum += <f64>e;
    }
    rowScale(pr, <f32>(1.0 / sum), n);
    memory.fill(pr + (<usize>n << 2), 0, <usize>(S - n) << 2);
  }
}

/** Σ_j a[j]·b[j] for j < n: float32 lanes, summed in float64. */
function rowDot(a: usize, b: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  let s: f64 = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) +
    <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
  for (; j < n; j++) s += <f64>ld(a, j) * <f64>ld(b, j);
  return s;
}

/** Pairs (b, h), p = b·nH + h, from p0 to p1. scratch: attentionScratchFloats(S, hd) floats. */
export function attention(out: usize, probs: usize, q: usize, k: usize, v: usize, B: i32, S: i32, nH: i32, nKV: i32,
  hd: i32, p0: i32, p1: i32, scratch: usize): void {
  const group = nH / nKV;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hd));
  const qs = nH * hd, ks = nKV * hd; // row strides of q/out and of k/v
  for (let pair = p0; pair < p1; pair++) {
    const b = pair / nH, h = pair % nH, kh = h / group;
    const qb = q + (<usize>(b * S * qs + h * hd) << 2);
    const kb = k + (<usize>(b * S * ks + kh * hd) << 2);
    const vb = v + (<usize>(b * S * ks + kh * hd) << 2);
    const ob = out + (<usize>(b * S * qs + h * hd) << 2);
    const pb = probs + (<usize>((b * nH + h) * S * S) << 2);
    // scores (S, S) = Q · Kᵀ (the lower triangle);  P = causal softmax;  out = P · V (row i over j ≤ i)
    gemmMasked(S, S, hd, qb, qs, 1, kb, 1, ks, pb, S, false, scratch, MASK_OUT_LOWER);
    causalSoftmax(pb, S, 0, S, scale);
    gemmMasked(S, hd, S, pb, S, 1, vb, ks, 1, ob, qs, false, scratch, MASK_K_UPTO);
  }
}

/** Pairs (b, kh), p = b·nKV + kh, from p0 to p1. scratch: attentionScratchFloats(S, hd) floats. */
export function attentionBackward(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize,
  probs: usize, B: i32, S: i32, nH: i32, nKV: i32, hd: i32, p0: i32, p1: i32, scratch: usize): void {
  const group = nH / nKV;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hd));
  const qs = nH * hd, ks = nKV * hd;
  const dP = scratch + (<usize>gemmScratchFloats(max(S, hd)) << 2); // (S, S), becomes dS in place
  for (let pair = p0; pair < p1; pair++) {
    const b = pair / nKV, kh = pair % nKV;
    const ko = <usize>(b * S * ks + kh * hd) << 2;
    for (let h = kh * group; h < (kh + 1) * group; h++) {
      const qo = <usize>(b * S * qs + h * hd) << 2;
      const pb = probs + (<usize>((b * nH + h) * S * S) << 2);
      // dP = dO · Vᵀ (the lower triangle);  dV += Pᵀ · dO (row j over i ≥ j)
      gemmMasked(S, S, hd, dout + qo, qs, 1, v + ko, 1, ks, dP, S, false, scratch, MASK_OUT_LOWER);
      gemmMasked(S, hd, S, pb, 1, S, dout + qo, qs, 1, dv + ko, ks, true, scratch, MASK_K_FROM);
      // dS = P ⊙ (dP − Σ_j P·dP) / √hd, row by row; 0 above the diagonal
      for (let i = 0; i < S; i++) {
        const pr = pb + (<usize>(i * S) << 2), dr = dP + (<usize>(i * S) << 2);
        const dot = rowDot(pr, dr, i + 1);
        const d4 = f32x4.splat(<f32>dot), s4 = f32x4.splat(scale);
        let j = 0;
        for (; j + 4 <= i + 1; j += 4) {
          const o = <usize>j << 2;
          v128.store(dr + o, f32x4.mul(f32x4.mul(v128.load(pr + o), f32x4.sub(v128.load(dr + o), d4)), s4));
        }
        for (; j <= i; j++) st(dr, j, ld(pr, j) * (ld(dr, j) - <f32>dot) * scale);
        memory.fill(dr + (<usize>(i + 1) << 2), 0, <usize>(S - i - 1) << 2);
      }
      // dQ += dS · K (row i over j ≤ i);  dK += dSᵀ · Q (row j over i ≥ j)
      gemmMasked(S, hd, S, dP, S, 1, k + ko, ks, 1, dq + qo, qs, true, scratch, MASK_K_UPTO);
      gemmMasked(S, hd, S, dP, 1, S, q + qo, qs, 1, dk + ko, ks, true, scratch, MASK_K_FROM);
    }
  }
}

export function crossEntropy(loss: usize, probs: usize, logits: usize, tokens: usize, B: i32, S: i32, V: i32,
  scale: f64): void {
  let total: f64 = 0;
  for (let r = 0; r < B * S; r++) {
    const term = crossEntropyRow(probs, logits, tokens, r, S, V);
    if (r % S < S - 1) total += term;
  }
  addf(loss, 0, <f32>(scale * total));
}

/** Row r: probs = softmax of the logits; returns lse − logit of the next token (meaningless at a sequence's end). */
// @ts-ignore: decorator
@inline function crossEntropyRow(probs: usize, logits: usize, tokens: usize, r: i32, S: i32, V: i32): f64 {
  const o = r * V;
  let mx: f32 = -Infinity;
  for (let j = 0; j < V; j++) mx = max(mx, ld(logits, o + j));
  const pr = probs + (<usize>o << 2);
  const s = expShiftSum(pr, logits + (<usize>o << 2), mx, V); // probs holds exp(logit − max) for now
  const lse = <f64>mx + Math.log(s);
  const inv = <f32>(1.0 / s);
  for (let j = 0; j < V; j++) st(pr, j, ld(pr, j) * inv);
  return r % S < S - 1 ? lse - <f64>ld(logits, o + ldi(tokens, r + 1)) : 0;
}

/**
 * crossEntropy in two steps, for threads: the rows r0 ≤ r < r1 (probs, and each row's term as float64 into
 * terms[r]), then crossEntropySum adds the terms in row order on one thread: the same sum, bit for bit.
 */
export function crossEntropyRows(terms: usize, probs: usize, logits: usize, tokens: usize, r0: i32, r1: i32, S: i32,
  V: i32): void {
  for (let r = r0; r < r1; r++) store<f64>(terms + (<usize>r << 3), crossEntropyRow(probs, logits, tokens, r, S, V));
}

export function crossEntropySum(loss: usize, terms: usize, B: i32, S: i32, scale: f64): void {
  let total: f64 = 0;
  for (let r = 0; r < B * S; r++) if (r % S < S - 1) total += load<f64>(terms + (<usize>r << 3));
  addf(loss, 0, <f32>(scale * total));
}

export function crossEntropyBackward(dlogits: usize, probs: usize, tokens: usize, B: i32, S: i32, V: i32,
  scale: f32): void {
  for (let r = 0; r < B * S; r++) {
    if (r % S == S - 1) continue;
    const tgt = ldi(tokens, r + 1), o = r * V;
    for (let j = 0; j < V; j++) addf(dlogits, o + j, scale * (ld(probs, o + j) - (j == tgt ? <f32>1 : <f32>0)));
  }
}
