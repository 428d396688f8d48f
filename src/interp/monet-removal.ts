// Removing many Monet composite experts from one token at once, sharing the work between pairs that have an expert
// half in common.
//
// Dimension legend: d model dim, E experts per side, m moe_dim (VD: halves of m' = m/2 and d' = d/2).
//
// A token's output is out = Σ_ij c_ij·E_ij(x), c_ij = Σ_h g1[h,i]·g2[h,j] (the composite score). Removing a set R of
// pairs subtracts Σ_{(i,j)∈R} c_ij·E_ij(x). Evaluating each E_ij on its own (reference/monet-expert-view.ts) costs
// O(m·d) per pair, and a label's removal set can hold most of the pairs a token fires (hundreds per token on the
// 1.4B). Both decompositions are sums of terms that depend on i alone, on j alone, or on one hidden half of each:
//   horizontal  E_ij = V_j A_i + b_j,  A_i = relu²(U_i x + u.bias_i)
//               Σ_R c_ij E_ij = Σ_j [V_j (Σ_i c_ij A_i) + s_j b_j],                      s_j = Σ_i c_ij
//   vertical    E_ij = [V11_i A1_i + V12_i A2_j + b1_i ; V21_j A1_i + V22_j A2_j + b2_j],
//               A1_i = relu²(U1_i x + u1.bias_i),  A2_j = relu²(U2_j x + u2.bias_j)
//               top    = Σ_i [V11_i (r_i A1_i) + V12_i (Σ_j c_ij A2_j) + r_i b1_i],          r_i = Σ_j c_ij
//               bottom = Σ_j [V21_j (Σ_i c_ij A1_i) + V22_j (s_j A2_j) + s_j b2_j]
// (sums over the pairs of R only). So each distinct i and each distinct j costs one hidden half (m'·d) and two
// column blocks (d'·m'), and each pair only m' multiply-adds: O((|I| + |J|)·m·d + |R|·m) per token instead of
// O(|R|·m·d). The result equals the per-pair sum up to the order of float64 additions (test:
// interp-mask.test.ts compares both).

import { hiddenBlock, type MonetExperts } from '../../reference/monet-expert-view.ts';

/** One removed pair of a token: expert halves i (router 1) and j (router 2), composite score c. */
export interface RemovedPair {
  i: number;
  j: number;
  c: number;
}

/** out[oo + o] −= Σ_c V[o, c0 + c]·h[c] for o < rows, c < h.length; V has `cols` columns. */
function subColumns(
  out: Float64Array,
  oo: number,
  V: Float64Array,
  cols: number,
  c0: number,
  h: Float64Array,
  rows: number,
) {
  const n = h.length;
  for (let o = 0; o < rows; o++) {
    let s = 0;
    const v0 = o * cols + c0;
    for (let c = 0; c < n; c++) s += V[v0 + c] * h[c];
    out[oo + o] -= s;
  }
}

/** Index of each distinct value of `keys` (in order of first appearance) and the distinct values. */
function distinct(keys: number[]): { at: Map<number, number>; list: number[] } {
  const at = new Map<number, number>();
  const list: number[] = [];
  for (const k of keys)
    if (!at.has(k)) {
      at.set(k, list.length);
      list.push(k);
    }
  return { at, list };
}

/**
 * out (d, at `oo`) −= Σ over `pairs` of c·E_ij(x) for one token x (d, at `xo`), evaluated as in the header. `m` is
 * moe_dim, `E` the experts per side.
 */
export function removeMonetPairs(
  out: Float64Array,
  oo: number,
  x: Float64Array,
  xo: number,
  pairs: readonly RemovedPair[],
  experts: MonetExperts,
  d: number,
  E: number,
  m: number,
): void {
  if (pairs.length === 0) return;
  const xs = x.subarray(xo, xo + d);
  const I = distinct(pairs.map((p) => p.i));
  const J = distinct(pairs.map((p) => p.j));
  if (experts.decompose === 'horizontal') {
    const p = experts.params;
    const A = I.list.map((i) => {
      const a = new Float64Array(m);
      hiddenBlock(a, p['u.weight'], p['u.bias'], xs, i * m, m, d);
      return a;
    });
    const w = J.list.map(() => new Float64Array(m)); // Σ_i c_ij A_i
    const s = new Float64Array(J.list.length); // Σ_i c_ij
    for (const q of pairs) {
      const jj = J.at.get(q.j)!;
      const a = A[I.at.get(q.i)!];
      const wj = w[jj];
      for (let r = 0; r < m; r++) wj[r] += q.c * a[r];
      s[jj] += q.c;
    }
    for (const [jj, j] of J.list.entries()) {
      subColumns(out, oo, p['v.weight'], E * m, j * m, w[jj], d);
      for (let o = 0; o < d; o++) out[oo + o] -= s[jj] * p.b[j * d + o];
    }
    return;
  }
  const p = experts.params;
  const mh = m / 2;
  const dh = d / 2;
  const A1 = I.list.map((i) => {
    const a = new Float64Array(mh);
    hiddenBlock(a, p['u1.weight'], p['u1.bias'], xs, i * mh, mh, d);
    return a;
  });
  const A2 = J.list.map((j) => {
    const a = new Float64Array(mh);
    hiddenBlock(a, p['u2.weight'], p['u2.bias'], xs, j * mh, mh, d);
    return a;
  });
  const nI = I.list.length;
  const nJ = J.list.length;
  const r = new Float64Array(nI); // r_i = Σ_j c_ij
  const s = new Float64Array(nJ); // s_j = Σ_i c_ij
  const q2 = Array.from({ length: nI }, () => new Float64Array(mh)); // Σ_j c_ij A2_j
  const p1 = Array.from({ length: nJ }, () => new Float64Array(mh)); // Σ_i c_ij A1_i
  for (const q of pairs) {
    const ii = I.at.get(q.i)!;
    const jj = J.at.get(q.j)!;
    r[ii] += q.c;
    s[jj] += q.c;
    const a1 = A1[ii];
    const a2 = A2[jj];
    const qi = q2[ii];
    const pj = p1[jj];
    for (let k = 0; k < mh; k++) {
      qi[k] += q.c * a2[k];
      pj[k] += q.c * a1[k];
    }
  }
  const scaled = new Float64Array(mh);
  for (const [ii, i] of I.list.entries()) {
    for (let k = 0; k < mh; k++) scaled[k] = r[ii] * A1[ii][k];
    subColumns(out, oo, p['v11.weight'], E * mh, i * mh, scaled, dh);
    subColumns(out, oo, p['v12.weight'], E * mh, i * mh, q2[ii], dh);
    for (let o = 0; o < dh; o++) out[oo + o] -= r[ii] * p.b1[i * dh + o];
  }
  for (const [jj, j] of J.list.entries()) {
    for (let k = 0; k < mh; k++) scaled[k] = s[jj] * A2[jj][k];
    subColumns(out, oo + dh, p['v21.weight'], E * mh, j * mh, p1[jj], dh);
    subColumns(out, oo + dh, p['v22.weight'], E * mh, j * mh, scaled, dh);
    for (let o = 0; o < dh; o++) out[oo + dh + o] -= s[jj] * p.b2[j * dh + o];
  }
}

/**
 * The same removal as mixes for a device's output stage (src/layers/monet-vd.ts monetVdOutput, monet-hd.ts
 * monetHdOutput), which is linear in them: the output of the removed pairs alone is that stage run on
 *   vertical     G1[t,i] = r_i,  G2[t,j] = s_j,  h11[t,i] = r_i A1_i,  h12[t,i] = Σ_j c_ij A2_j,
 *                h21[t,j] = Σ_i c_ij A1_i,  h22[t,j] = s_j A2_j
 *   horizontal   y[t,j] = Σ_i c_ij A_i,  G2[t,j] = s_j
 * (the header's sums; A from the forward's saved activations a1, a2 / a, (T, E, m') or (T, E, m)), zero for every
 * expert half no removed pair of the token uses. `pairs(t)` lists token t's removed pairs.
 */
export function removedMixes(
  decompose: 'vertical' | 'horizontal',
  T: number,
  E: number,
  m: number,
  pairs: (t: number) => readonly RemovedPair[],
  a1: ArrayLike<number>,
  a2: ArrayLike<number> | null,
): Record<string, Float32Array> {
  if (decompose === 'horizontal') {
    const y = new Float64Array(T * E * m);
    const G2 = new Float64Array(T * E);
    for (let t = 0; t < T; t++)
      for (const { i, j, c } of pairs(t)) {
        const ai = (t * E + i) * m;
        const yj = (t * E + j) * m;
        for (let k = 0; k < m; k++) y[yj + k] += c * a1[ai + k];
        G2[t * E + j] += c;
      }
    return { y: Float32Array.from(y), G2: Float32Array.from(G2) };
  }
  if (!a2) throw new Error('removedMixes: a vertical layer needs both halves (a1, a2)');
  const mh = m / 2;
  const G1 = new Float64Array(T * E);
  const G2 = new Float64Array(T * E);
  const h12 = new Float64Array(T * E * mh);
  const h21 = new Float64Array(T * E * mh);
  for (let t = 0; t < T; t++)
    for (const { i, j, c } of pairs(t)) {
      const ri = t * E + i;
      const sj = t * E + j;
      G1[ri] += c;
      G2[sj] += c;
      for (let k = 0; k < mh; k++) {
        h12[ri * mh + k] += c * a2[sj * mh + k];
        h21[sj * mh + k] += c * a1[ri * mh + k];
      }
    }
  const h11 = new Float32Array(T * E * mh);
  const h22 = new Float32Array(T * E * mh);
  for (let r = 0; r < T * E; r++) {
    if (G1[r] !== 0) for (let k = 0; k < mh; k++) h11[r * mh + k] = G1[r] * a1[r * mh + k];
    if (G2[r] !== 0) for (let k = 0; k < mh; k++) h22[r * mh + k] = G2[r] * a2[r * mh + k];
  }
  const f32 = (a: Float64Array) => Float32Array.from(a);
  return { h11, h12: f32(h12), h21: f32(h21), h22, G1: f32(G1), G2: f32(G2) };
}
