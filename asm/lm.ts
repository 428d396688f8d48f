// Decoder-LM kernels: embedding gather / scatter-add, RoPE, causal attention with grouped KV heads, cross-entropy.
//
// Dimension legend: B sequences, S positions, T = B·S, V vocabulary, nH query heads, nKV key/value heads,
// hd head dim; q, out (B, S, nH·hd); k, v (B, S, nKV·hd); probs (B, nH, S, S).

import { addf, ld, ldi, st } from './common';

export function gatherRows(dst: usize, table: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) memory.copy(dst + (<usize>(r * cols) << 2), table + (<usize>(ldi(idx, r) * cols) << 2), <usize>cols << 2);
}

export function scatterAddRows(dst: usize, src: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const d = ldi(idx, r) * cols;
    for (let c = 0; c < cols; c++) addf(dst, d + c, ld(src, r * cols + c));
  }
}

/** sign = +1: forward rotation into y (=); sign = −1: the backward, rotation by −angle ADDED into y. */
function rotate(y: usize, x: usize, B: i32, S: i32, heads: i32, hd: i32, theta: f64, sign: f64): void {
  const half = hd / 2;
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S; s++)
      for (let i = 0; i < half; i++) {
        const ang = <f64>s * Math.pow(theta, (-2.0 * i) / hd);
        const cs = Math.cos(ang), sn = sign * Math.sin(ang);
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

// @ts-ignore: decorator
@inline function dot(a: usize, b: usize, n: i32): f32 {
  let s: f32 = 0;
  for (let c = 0; c < n; c++) s += ld(a, c) * ld(b, c);
  return s;
}

export function attention(out: usize, probs: usize, q: usize, k: usize, v: usize, B: i32, S: i32, nH: i32, nKV: i32, hd: i32): void {
  const group = nH / nKV;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hd));
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      const kh = h / group;
      for (let i = 0; i < S; i++) {
        const qo = ((b * S + i) * nH + h) * hd;
        const po = ((b * nH + h) * S + i) * S;
        let mx: f32 = -Infinity;
        for (let j = 0; j <= i; j++) {
          const sc = dot(q + (<usize>qo << 2), k + (<usize>(((b * S + j) * nKV + kh) * hd) << 2), hd) * scale;
          st(probs, po + j, sc);
          mx = max(mx, sc);
        }
        let s: f64 = 0;
        for (let j = 0; j <= i; j++) {
          const e = Math.exp(<f64>(ld(probs, po + j) - mx));
          st(probs, po + j, <f32>e);
          s += e;
        }
        const inv = <f32>(1.0 / s);
        for (let j = 0; j < S; j++) st(probs, po + j, j <= i ? ld(probs, po + j) * inv : 0);
        for (let c = 0; c < hd; c++) st(out, qo + c, 0);
        for (let j = 0; j <= i; j++) {
          const p = ld(probs, po + j);
          const vo = ((b * S + j) * nKV + kh) * hd;
          for (let c = 0; c < hd; c++) addf(out, qo + c, p * ld(v, vo + c));
        }
      }
    }
}

/** scratch: S words. */
export function attentionBackward(dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize, probs: usize,
  B: i32, S: i32, nH: i32, nKV: i32, hd: i32, scratch: usize): void {
  const group = nH / nKV;
  const scale = <f32>(1.0 / Math.sqrt(<f64>hd));
  const dp = scratch;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < nH; h++) {
      const kh = h / group;
      for (let i = 0; i < S; i++) {
        const qo = ((b * S + i) * nH + h) * hd, po = ((b * nH + h) * S + i) * S;
        let dotp: f32 = 0;
        for (let j = 0; j <= i; j++) {
          const vo = ((b * S + j) * nKV + kh) * hd;
          const p = ld(probs, po + j);
          const s = dot(dout + (<usize>qo << 2), v + (<usize>vo << 2), hd);
          for (let c = 0; c < hd; c++) addf(dv, vo + c, p * ld(dout, qo + c));
          st(dp, j, s);
          dotp += p * s;
        }
        for (let j = 0; j <= i; j++) {
          const ds = ld(probs, po + j) * (ld(dp, j) - dotp) * scale;
          const ko = ((b * S + j) * nKV + kh) * hd;
          for (let c = 0; c < hd; c++) {
            addf(dq, qo + c, ds * ld(k, ko + c));
            addf(dk, ko + c, ds * ld(q, qo + c));
          }
        }
      }
    }
}

export function crossEntropy(loss: usize, probs: usize, logits: usize, tokens: usize, B: i32, S: i32, V: i32, scale: f64): void {
  let total: f64 = 0;
  for (let r = 0; r < B * S; r++) {
    const o = r * V;
    let mx: f32 = -Infinity;
    for (let j = 0; j < V; j++) mx = max(mx, ld(logits, o + j));
    let s: f64 = 0;
    for (let j = 0; j < V; j++) s += Math.exp(<f64>(ld(logits, o + j) - mx));
    const lse = <f64>mx + Math.log(s);
    for (let j = 0; j < V; j++) st(probs, o + j, <f32>Math.exp(<f64>ld(logits, o + j) - lse));
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
