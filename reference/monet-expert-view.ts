// Monet, the "expert view": N = E² composite experts computed one by one (docs/spec.md §1.4–1.5, §1.11 pitfall 6).
//
// Dimension legend:
//   T tokens   d model dim   H expert heads   E experts per side = √N   N = E² composite experts   m moe_dim
//
// This file is deliberately naive. It is what the paper's equations say literally,
//   out = Σ_{i,j} g_ij(x)·E_ij(x),   g_ij = Σ_h g1[h,i]·g2[h,j],
// with every composite expert evaluated on its own: O(N·m·d) per token. Tests use it to prove that the efficient
// contractions in monet-hd.ts / monet-vd.ts compute the same thing. The interpretability work uses the readout
// helpers below (composite ids, scores, and one expert's contribution, which is what must be subtracted to ablate
// it: zeroing g1[:,i] or g2[:,j] would remove a whole row or column of E experts instead of one).
//
// Composite expert id (official README readout, `einsum("bthi,bthj->bthij").flatten(-2)`): id = i·E + j,
// i from router 1 (the bottom halves U_i), j from router 2 (the top halves V_j / b_j).

import type { MonetMoeDims } from './monet-hd.ts';
import type { MonetHdParams } from './monet-hd.ts';
import type { MonetVdParams } from './monet-vd.ts';
import { act } from './activations.ts';

export type MonetExperts =
  | { decompose: 'horizontal'; params: MonetHdParams }
  | { decompose: 'vertical'; params: MonetVdParams };

/** Composite expert id of (i, j): i·E + j. */
export function compositeId(i: number, j: number, E: number): number {
  return i * E + j;
}

/** The (i, j) of a composite id. */
export function compositeIndices(id: number, E: number): [number, number] {
  return [Math.floor(id / E), id % E];
}

/** g_ij for token t: Σ_h g1[t,h,i]·g2[t,h,j]. Sums to H over (i, j), not to 1. */
export function compositeScore(
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  t: number,
  i: number,
  j: number,
  H: number,
  E: number,
): number {
  let s = 0;
  for (let h = 0; h < H; h++) s += g1[(t * H + h) * E + i] * g2[(t * H + h) * E + j];
  return s;
}

/** All composite scores, out (T, N) with column i·E + j. Forms N numbers per token: readouts on small batches only. */
export function compositeScores(
  out: Float64Array, // (T, E·E)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  T: number,
  H: number,
  E: number,
): void {
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < E; i++) {
      for (let j = 0; j < E; j++) out[t * E * E + compositeId(i, j, E)] = compositeScore(g1, g2, t, i, j, H, E);
    }
  }
}

/** relu²(W[rows r0 .. r0+len) · x + bias) into out (len). */
export function hiddenBlock(
  out: Float64Array,
  W: Float64Array,
  bias: Float64Array,
  x: Float64Array,
  r0: number,
  len: number,
  d: number,
): void {
  for (let r = 0; r < len; r++) {
    let s = bias[r0 + r];
    for (let c = 0; c < d; c++) s += W[(r0 + r) * d + c] * x[c];
    out[r] = act('relu2', s);
  }
}

/** out (rows) += V[:, c0 .. c0+len) · h, V (rows, cols). */
function addColumnBlock(
  out: Float64Array,
  o0: number,
  V: Float64Array,
  cols: number,
  c0: number,
  h: Float64Array,
  rows: number,
): void {
  for (let o = 0; o < rows; o++) {
    let s = 0;
    for (let c = 0; c < h.length; c++) s += V[o * cols + c0 + c] * h[c];
    out[o0 + o] += s;
  }
}

/**
 * E_ij(x) for one token vector x (d), into out (d) (overwritten).
 *   horizontal: V_j relu²(U_i x + b_i) + b[j]
 *   vertical:   [V11_i A1_i + V12_i A2_j + b1[i] ; V21_j A1_i + V22_j A2_j + b2[j]],
 *               A1_i = relu²(U1_i x + u1.bias_i), A2_j = relu²(U2_j x + u2.bias_j)
 */
export function monetExpertOutput(
  out: Float64Array, // (d)
  x: Float64Array, // (d)
  i: number,
  j: number,
  experts: MonetExperts,
  dims: MonetMoeDims,
): void {
  const { d, E, m } = dims;
  out.fill(0);
  if (experts.decompose === 'horizontal') {
    const p = experts.params;
    const a = new Float64Array(m); // (m) expert i's hidden units
    hiddenBlock(a, p['u.weight'], p['u.bias'], x, i * m, m, d);
    addColumnBlock(out, 0, p['v.weight'], E * m, j * m, a, d);
    for (let o = 0; o < d; o++) out[o] += p.b[j * d + o];
  } else {
    const p = experts.params;
    const mh = m / 2;
    const dh = d / 2;
    const a1 = new Float64Array(mh); // (m') A1_i
    const a2 = new Float64Array(mh); // (m') A2_j
    hiddenBlock(a1, p['u1.weight'], p['u1.bias'], x, i * mh, mh, d);
    hiddenBlock(a2, p['u2.weight'], p['u2.bias'], x, j * mh, mh, d);
    addColumnBlock(out, 0, p['v11.weight'], E * mh, i * mh, a1, dh); // top: V11_i A1_i
    addColumnBlock(out, 0, p['v12.weight'], E * mh, i * mh, a2, dh); // top: V12_i A2_j
    addColumnBlock(out, dh, p['v21.weight'], E * mh, j * mh, a1, dh); // bottom: V21_j A1_i
    addColumnBlock(out, dh, p['v22.weight'], E * mh, j * mh, a2, dh); // bottom: V22_j A2_j
    for (let o = 0; o < dh; o++) {
      out[o] += p.b1[i * dh + o];
      out[dh + o] += p.b2[j * dh + o];
    }
  }
}

/**
 * One composite expert's contribution g_ij(x_t)·E_ij(x_t) to token t's output, into out (d) (overwritten).
 * Subtracting it from the layer output ablates exactly expert (i, j) for that token.
 */
export function monetExpertContribution(
  out: Float64Array, // (d)
  x: Float64Array, // (T, d)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  t: number,
  i: number,
  j: number,
  experts: MonetExperts,
  dims: MonetMoeDims,
): void {
  const { d, H, E } = dims;
  monetExpertOutput(out, x.subarray(t * d, (t + 1) * d), i, j, experts, dims);
  const gij = compositeScore(g1, g2, t, i, j, H, E);
  for (let o = 0; o < d; o++) out[o] *= gij;
}

/** The naive layer: out[t] = Σ_{i,j} g_ij(x_t)·E_ij(x_t). O(N·m·d) per token — tests only. */
export function monetExpertViewForward(
  out: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  experts: MonetExperts,
  dims: MonetMoeDims,
): void {
  const { T, d, H, E } = dims;
  const e = new Float64Array(d); // (d) one expert's output
  out.fill(0, 0, T * d);
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * d, (t + 1) * d);
    for (let i = 0; i < E; i++) {
      for (let j = 0; j < E; j++) {
        const gij = compositeScore(g1, g2, t, i, j, H, E);
        if (gij === 0) continue; // exactly zero gate: the expert is inactive for this token
        monetExpertOutput(e, xt, i, j, experts, dims);
        for (let o = 0; o < d; o++) out[t * d + o] += gij * e[o];
      }
    }
  }
}
