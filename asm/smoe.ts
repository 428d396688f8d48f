// SMoE dispatch and combine (dropless, static shapes) and the aux losses (docs/spec.md §3.4).
//
// Dimension legend: T tokens, d model dim, E experts, k experts per token, P = T·k (token, slot) pairs.
// moeSort sorts the pairs by expert (a stable counting sort) so that each expert's rows are contiguous for the
// grouped matmuls; `pos` is the inverse permutation, which makes combine a gather (no write conflicts).

import { addf, axpyf as axpy, dotf, ld, ldi, st, sti } from './common';

/** scratch: E words. */
export function moeSort(
  order: usize, pos: usize, offsets: usize, expertIdx: usize, P: i32, E: i32, scratch: usize,
): void {
  const next = scratch;
  for (let e = 0; e <= E; e++) sti(offsets, e, 0);
  for (let p = 0; p < P; p++) {
    const e = ldi(expertIdx, p);
    sti(offsets, e + 1, ldi(offsets, e + 1) + 1);
  }
  for (let e = 0; e < E; e++) sti(offsets, e + 1, ldi(offsets, e + 1) + ldi(offsets, e));
  for (let e = 0; e < E; e++) sti(next, e, ldi(offsets, e));
  for (let p = 0; p < P; p++) {
    const e = ldi(expertIdx, p);
    const r = ldi(next, e);
    sti(next, e, r + 1);
    sti(order, r, p);
    sti(pos, p, r);
  }
}

export function moeDispatch(xs: usize, x: usize, order: usize, P: i32, k: i32, d: i32): void {
  for (let r = 0; r < P; r++) {
    const t = ldi(order, r) / k;
    memory.copy(xs + (<usize>(r * d) << 2), x + (<usize>(t * d) << 2), <usize>d << 2);
  }
}

export function moeDispatchBackward(dx: usize, dxs: usize, pos: usize, T: i32, k: i32, d: i32): void {
  for (let t = 0; t < T; t++)
    for (let s = 0; s < k; s++) axpy(dx + (<usize>(t * d) << 2), dxs + (<usize>(ldi(pos, t * k + s) * d) << 2), 1, d);
}

export function moeCombine(y: usize, ys: usize, w: usize, pos: usize, T: i32, k: i32, d: i32): void {
  for (let t = 0; t < T; t++) {
    const yt = y + (<usize>(t * d) << 2);
    for (let s = 0; s < k; s++) axpy(yt, ys + (<usize>(ldi(pos, t * k + s) * d) << 2), ld(w, t * k + s), d);
  }
}

export function moeCombineBackward(
  dys: usize, dw: usize, dy: usize, ys: usize, w: usize, pos: usize, T: i32, k: i32, d: i32,
): void {
  for (let t = 0; t < T; t++)
    for (let s = 0; s < k; s++) {
      const p = t * k + s, r = ldi(pos, p);
      const dyt = dy + (<usize>(t * d) << 2), yr = ys + (<usize>(r * d) << 2);
      axpy(dys + (<usize>(r * d) << 2), dyt, ld(w, p), d);
      addf(dw, p, dotf(dyt, yr, d));
    }
}

/** scratch: 2·E words (mean probability P_i and fraction f_i). */
export function smoeAux(
  lossBalance: usize, lossZ: usize, probs: usize, lse: usize, z: usize, expertIdx: usize,
  T: i32, E: i32, k: i32, scale: f64, scratch: usize,
): void {
  const Pm = scratch, fr = scratch + (<usize>E << 2);
  for (let j = 0; j < E; j++) {
    st(Pm, j, 0);
    st(fr, j, 0);
  }
  let zl: f64 = 0;
  for (let t = 0; t < T; t++) {
    let mx: f32 = -Infinity;
    for (let j = 0; j < E; j++) mx = max(mx, ld(z, t * E + j));
    let s: f64 = 0;
    for (let j = 0; j < E; j++) s += Math.exp(<f64>(ld(z, t * E + j) - mx));
    const l = <f64>mx + Math.log(s);
    st(lse, t, <f32>l);
    zl += l * l;
    for (let j = 0; j < E; j++) {
      const p = Math.exp(<f64>ld(z, t * E + j) - l);
      st(probs, t * E + j, <f32>p);
      addf(Pm, j, <f32>(p / T));
    }
  }
  for (let p = 0; p < T * k; p++) addf(fr, ldi(expertIdx, p), <f32>(1.0 / (<f64>T * k)));
  let bal: f64 = 0;
  for (let j = 0; j < E; j++) bal += <f64>ld(fr, j) * <f64>ld(Pm, j);
  addf(lossBalance, 0, <f32>(scale * E * bal));
  addf(lossZ, 0, <f32>((scale * zl) / T));
}

/** scratch: E words. */
export function smoeAuxBackward(
  dz: usize, probs: usize, lse: usize, expertIdx: usize, T: i32, E: i32, k: i32, coefBalance: f64, coefZ: f64,
  scratch: usize,
): void {
  const fr = scratch;
  for (let j = 0; j < E; j++) st(fr, j, 0);
  for (let p = 0; p < T * k; p++) addf(fr, ldi(expertIdx, p), <f32>(1.0 / (<f64>T * k)));
  for (let t = 0; t < T; t++) {
    let fp: f64 = 0;
    for (let j = 0; j < E; j++) fp += <f64>ld(fr, j) * <f64>ld(probs, t * E + j);
    const l = <f64>ld(lse, t);
    for (let j = 0; j < E; j++) {
      const p = <f64>ld(probs, t * E + j);
      addf(dz, t * E + j, <f32>(coefBalance * (<f64>E / T) * p * (<f64>ld(fr, j) - fp) + coefZ * (2.0 / T) * l * p));
    }
  }
}
