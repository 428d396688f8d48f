// PEER: product-key retrieval (two half-query top-k's, k² candidates, final top-k) and the singleton experts
// with gather and scatter-add (docs/spec.md §2.2, §2.5).
//
// Dimension legend: T tokens, d model dim, H heads, k experts per head (and per half), dk key_dim, n = √N sub-keys
// per side; q (T, H·dk); subKeys (2, n, dk/2); ids, scores, w, hpre (T, H, k); w_down, w_up (N, d).

import { addf, axpyf as axpy, dotf as dot, ld, ldi, st, sti, topkOffer } from './common';
import { act, actGrad } from './elementwise';

// @ts-ignore: decorator
@inline function at(p: usize, r: i32, len: i32): usize {
  return p + (<usize>(r * len) << 2);
}

/** scratch: 6·k words (three top-k buffers: first half, second half, candidates). */
export function peerRoute(
  ids: usize, scores: usize, q: usize, subKeys: usize, T: i32, H: i32, dk: i32, n: i32, k: i32, scratch: usize,
): void {
  const half = dk / 2;
  const buf = scratch;
  const kb = <usize>k << 2;
  const Av = buf, Ai = buf + kb, Bv = buf + 2 * kb, Bi = buf + 3 * kb, Cv = buf + 4 * kb, Ci = buf + 5 * kb;
  const C2 = subKeys + (<usize>(n * half) << 2); // second half's sub-keys
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const q1 = at(q, t * H + h, dk), q2 = q1 + (<usize>half << 2);
      // top-k of each half's sub-key scores s1[a] = q1·C[a], s2[b] = q2·C'[b]
      let na = 0, nb = 0;
      for (let a = 0; a < n; a++) {
        na = topkOffer(Av, Ai, k, na, dot(q1, at(subKeys, a, half), half), a);
        nb = topkOffer(Bv, Bi, k, nb, dot(q2, at(C2, a, half), half), a);
      }
      // the k² candidates (a, b), score s1[a] + s2[b], id a·n + b; the final top-k, ties → lower id
      let nc = 0;
      for (let x = 0; x < k; x++) {
        const a = ldi(Ai, x), sa = ld(Av, x);
        for (let y = 0; y < k; y++) nc = topkOffer(Cv, Ci, k, nc, sa + ld(Bv, y), a * n + ldi(Bi, y));
      }
      const o = (t * H + h) * k;
      for (let r = 0; r < k; r++) {
        sti(ids, o + r, ldi(Ci, r));
        st(scores, o + r, ld(Cv, r));
      }
    }
  }
}

export function peerRouteBackward(dq: usize, dSubKeys: usize, dscores: usize, q: usize, subKeys: usize, ids: usize,
  T: i32, H: i32, dk: i32, n: i32, k: i32): void {
  const half = dk / 2;
  const C2 = subKeys + (<usize>(n * half) << 2), dC2 = dSubKeys + (<usize>(n * half) << 2);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const q1 = at(q, t * H + h, dk), q2 = q1 + (<usize>half << 2);
      const dq1 = at(dq, t * H + h, dk), dq2 = dq1 + (<usize>half << 2);
      for (let r = 0; r < k; r++) {
        const o = (t * H + h) * k + r;
        const id = ldi(ids, o), ds = ld(dscores, o);
        const a = id / n, b = id % n;
        axpy(dq1, at(subKeys, a, half), ds, half);
        axpy(dq2, at(C2, b, half), ds, half);
        axpy(at(dSubKeys, a, half), q1, ds, half);
        axpy(at(dC2, b, half), q2, ds, half);
      }
    }
  }
}

export function peerExperts(
  y: usize, hpre: usize, x: usize, wDown: usize, wUp: usize, ids: usize, w: usize, T: i32, H: i32, k: i32, d: i32,
  kind: i32,
): void {
  for (let t = 0; t < T; t++) {
    const xt = at(x, t, d), yt = at(y, t, d);
    for (let hr = 0; hr < H * k; hr++) {
      const o = t * H * k + hr, id = ldi(ids, o);
      const s = dot(at(wDown, id, d), xt, d);
      st(hpre, o, s);
      axpy(yt, at(wUp, id, d), <f32>(<f64>ld(w, o) * act(kind, s)), d);
    }
  }
}

export function peerExpertsBackward(
  dx: usize, dwDown: usize, dwUp: usize, dw: usize, dy: usize, x: usize, wDown: usize, wUp: usize,
  ids: usize, w: usize, hpre: usize, T: i32, H: i32, k: i32, d: i32, kind: i32): void {
  for (let t = 0; t < T; t++) {
    const xt = at(x, t, d), dyt = at(dy, t, d), dxt = at(dx, t, d);
    for (let hr = 0; hr < H * k; hr++) {
      const o = t * H * k + hr, id = ldi(ids, o);
      const hp = <f64>ld(hpre, o), wo = ld(w, o);
      const fa = <f32>act(kind, hp);
      const dov = dot(dyt, at(wUp, id, d), d);
      axpy(at(dwUp, id, d), dyt, wo * fa, d); // scatter-add: the same expert row can serve many (t, h, r)
      addf(dw, o, dov * fa);
      const dh = <f32>(<f64>dov * <f64>wo * actGrad(kind, hp));
      axpy(at(dwDown, id, d), xt, dh, d);
      axpy(dxt, at(wDown, id, d), dh, d);
    }
  }
}
