// Monet MoVDE: mixture of vertically decomposed experts (docs/spec.md §1.5, backward §1.10), float64.
//
// Dimension legend:
//   T  tokens      d  model dim, d' = d/2      H  expert heads      E  experts per side = √N
//   m' = moe_dim/2 hidden units per half-expert
//
// Parameters (official `MonetMoVDE` names, here without the `moe.` prefix):
//   u1.weight, u2.weight (E·m', d), u1.bias, u2.bias (E·m')     first layers of the two halves
//   v11.weight, v12.weight, v21.weight, v22.weight (d', E·m')   second layers: v<out half><in half>
//   b1, b2 (E, d')                                               output biases of the top / bottom output half
//
// Expert view (docs/spec.md §1.5, paper Eq. 15; reference/monet-expert-view.ts computes it literally): composite expert
// (i, j) splits both its hidden layer and its output vertically. With A1_i = relu²(U1_i x + b11_i) (from router 1's
// index i) and A2_j = relu²(U2_j x + b21_j) (from router 2's index j):
//   E_ij(x) = [ V11_i A1_i + V12_i A2_j + b1_i ;  V21_j A1_i + V22_j A2_j + b2_j ]
// i.e. the top output half is owned by i, the bottom by j, and each reads both hidden halves.
// The efficient order (official code) mixes before projecting, with G1[i] = Σ_h g1[h,i], G2[j] = Σ_h g2[h,j]:
//   a1 = relu²(u1 x + u1.bias) (E, m'),  a2 = relu²(u2 x + u2.bias) (E, m')
//   c1[h,c] = Σ_i g1[h,i] a1[i,c],  c2[h,c] = Σ_j g2[h,j] a2[j,c]                     (H, m')
//   h11[i,c] = G1[i]·a1[i,c]             "btim,bthi->btim"         straight flow, top
//   h12[i,c] = Σ_h g1[h,i]·c2[h,c]       "btjm,bthj,bthi->btim"    cross flow: hidden half 2 → top output
//   h21[j,c] = Σ_h g2[h,j]·c1[h,c]       "btim,bthi,bthj->btjm"    cross flow: hidden half 1 → bottom output
//   h22[j,c] = G2[j]·a2[j,c]             "btjm,bthj->btjm"         straight flow, bottom
//   top = v11·h11 + v12·h12 + Σ_i G1[i] b1[i,:];  bot = v21·h21 + v22·h22 + Σ_j G2[j] b2[j,:];  out = [top; bot]
// Per token: O(E·m·d + H·E·m) work, nothing of size E×E or N.

import { act, actGrad } from './activations.ts';
import type { MonetMoeDims } from './monet-hd.ts';
import type { MonetExpertsImpl } from './monet-layer.ts';

export type MonetVdParams = Record<
  | 'u1.weight'
  | 'u1.bias'
  | 'u2.weight'
  | 'u2.bias'
  | 'v11.weight'
  | 'v12.weight'
  | 'v21.weight'
  | 'v22.weight'
  | 'b1'
  | 'b2',
  Float64Array
>;

/** What forward saves for backward. */
export interface MonetVdSaved {
  pre1: Float64Array; // (T, E·m') u1 x + u1.bias
  pre2: Float64Array; // (T, E·m')
  a1: Float64Array; // (T, E, m') relu²(pre1)
  a2: Float64Array; // (T, E, m')
  c1: Float64Array; // (T, H, m') Σ_i g1·a1
  c2: Float64Array; // (T, H, m') Σ_j g2·a2
  h11: Float64Array; // (T, E, m') the four inputs of v11, v12, v21, v22
  h12: Float64Array; // (T, E, m')
  h21: Float64Array; // (T, E, m')
  h22: Float64Array; // (T, E, m')
}

export function monetVdForward(
  out: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  p: MonetVdParams,
  dims: MonetMoeDims,
): MonetVdSaved {
  const { T, d, H, E } = dims;
  const mh = dims.m / 2; // m' (d and m are even: src/kinds/monet.ts)
  const dh = d / 2; // d'
  const Emh = E * mh;
  const s: MonetVdSaved = {
    // shapes as in MonetVdSaved
    pre1: new Float64Array(T * Emh),
    pre2: new Float64Array(T * Emh),
    a1: new Float64Array(T * Emh),
    a2: new Float64Array(T * Emh),
    c1: new Float64Array(T * H * mh),
    c2: new Float64Array(T * H * mh),
    h11: new Float64Array(T * Emh),
    h12: new Float64Array(T * Emh),
    h21: new Float64Array(T * Emh),
    h22: new Float64Array(T * Emh),
  };
  const G1 = new Float64Array(E); // (E) Σ_h g1[h,i] for one token
  const G2 = new Float64Array(E); // (E)
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * d, t * d + d); // (d)
    const g1_t = g1.subarray(t * H * E, (t + 1) * H * E); // (H, E)
    const g2_t = g2.subarray(t * H * E, (t + 1) * H * E); // (H, E)
    const off = t * Emh; // offset of token t in the (T, E, m') buffers
    const coff = t * H * mh; // offset of token t in the (T, H, m') buffers
    // a_r = relu²(u_r x + u_r.bias) for both halves  — dense projections
    for (const [W, bias, pre, a] of [
      [p['u1.weight'], p['u1.bias'], s.pre1, s.a1],
      [p['u2.weight'], p['u2.bias'], s.pre2, s.a2],
    ] as const) {
      for (let r = 0; r < Emh; r++) {
        let v = bias[r];
        for (let c = 0; c < d; c++) v += W[r * d + c] * xt[c];
        pre[off + r] = v;
        a[off + r] = act('relu2', v);
      }
    }
    // G1[i] = Σ_h g1[h,i];  G2[j] = Σ_h g2[h,j]  — einsum "hi->i", "hj->j"
    G1.fill(0);
    G2.fill(0);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < E; i++) {
        G1[i] += g1_t[h * E + i];
        G2[i] += g2_t[h * E + i];
      }
    }
    // c1[h,c] = Σ_i g1[h,i]·a1[i,c]  — einsum "im,hi->hm";  c2[h,c] = Σ_j g2[h,j]·a2[j,c]  — "jm,hj->hm"
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < mh; c++) {
        let v1 = 0;
        let v2 = 0;
        for (let i = 0; i < E; i++) {
          v1 += g1_t[h * E + i] * s.a1[off + i * mh + c];
          v2 += g2_t[h * E + i] * s.a2[off + i * mh + c];
        }
        s.c1[coff + h * mh + c] = v1;
        s.c2[coff + h * mh + c] = v2;
      }
    }
    for (let i = 0; i < E; i++) {
      for (let c = 0; c < mh; c++) {
        const k = off + i * mh + c;
        // h11[i,c] = G1[i]·a1[i,c]         — einsum "btim,bthi->btim"
        s.h11[k] = G1[i] * s.a1[k];
        // h22[j,c] = G2[j]·a2[j,c]         — einsum "btjm,bthj->btjm" (j plays the role of i here)
        s.h22[k] = G2[i] * s.a2[k];
        // h12[i,c] = Σ_h g1[h,i]·c2[h,c]   — einsum "btjm,bthj,bthi->btim" with the j-sum done in c2
        // h21[j,c] = Σ_h g2[h,j]·c1[h,c]   — einsum "btim,bthi,bthj->btjm" with the i-sum done in c1
        let v12 = 0;
        let v21 = 0;
        for (let h = 0; h < H; h++) {
          v12 += g1_t[h * E + i] * s.c2[coff + h * mh + c];
          v21 += g2_t[h * E + i] * s.c1[coff + h * mh + c];
        }
        s.h12[k] = v12;
        s.h21[k] = v21;
      }
    }
    // top = v11·h11 + v12·h12 + Σ_i G1[i] b1[i,:]  ("bthi,id->btd");  bot = v21·h21 + v22·h22 + Σ_j G2[j] b2[j,:]
    const V11 = p['v11.weight'],
      V12 = p['v12.weight'],
      V21 = p['v21.weight'],
      V22 = p['v22.weight']; // (d', E·m')
    for (let o = 0; o < dh; o++) {
      let top = 0;
      let bot = 0;
      for (let r = 0; r < Emh; r++) {
        top += V11[o * Emh + r] * s.h11[off + r] + V12[o * Emh + r] * s.h12[off + r];
        bot += V21[o * Emh + r] * s.h21[off + r] + V22[o * Emh + r] * s.h22[off + r];
      }
      for (let i = 0; i < E; i++) {
        top += G1[i] * p.b1[i * dh + o];
        bot += G2[i] * p.b2[i * dh + o];
      }
      out[t * d + o] = top;
      out[t * d + dh + o] = bot;
    }
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Backward, one token at a time, in its flows (each the reverse of one forward step, in reverse order):
//   output projections  (v11, v12 → top half; v21, v22 → bottom half)   dv, dh11..dh22
//   straight flows      (h11 = G1·a1, h22 = G2·a2, and the biases b1, b2)  db, dG1, dG2, da1, da2
//   head sums           (G1[i] = Σ_h g1[h,i])                            dg1, dg2
//   cross flows         (h12 = Σ_h g1·c2, h21 = Σ_h g2·c1)               dg1, dg2, dc1, dc2
//   mixes               (c1 = Σ_i g1·a1, c2 = Σ_j g2·a2)                 da1, da2, dg1, dg2
//   input projections   (a = relu²(u x + u.bias), both halves)           du, du.bias, dx

/** One token's slices of the tensors the backward reads and writes. */
interface VdToken {
  off: number; // offset of the token in the (T, E, m') buffers
  coff: number; // offset of the token in the (T, H, m') buffers
  xt: Float64Array; // (d)
  dtop: Float64Array; // (d') gradient of the top half of the output
  dbot: Float64Array; // (d') bottom half
  g1: Float64Array; // (H, E)
  g2: Float64Array; // (H, E)
  dg1: Float64Array; // (H, E) accumulated
  dg2: Float64Array; // (H, E) accumulated
}

/** Per-token gradients of the intermediates, reused from token to token (each flow overwrites or zeroes its own). */
interface VdScratch {
  dh11: Float64Array; // (E, m') gradients of the four v inputs
  dh12: Float64Array;
  dh21: Float64Array;
  dh22: Float64Array;
  da1: Float64Array; // (E, m') gradients of the relu² activations
  da2: Float64Array;
  dc1: Float64Array; // (H, m') gradients of the mixes
  dc2: Float64Array;
  G1: Float64Array; // (E) Σ_h g1[h,i]
  G2: Float64Array; // (E) Σ_h g2[h,j]
  dG1: Float64Array; // (E)
  dG2: Float64Array; // (E)
}

/** The four projections: dv11 += dtop ⊗ h11 (and so on);  dh11 = v11ᵀ dtop (and so on). */
function vdOutputBackward(
  grads: MonetVdParams,
  p: MonetVdParams,
  s: MonetVdSaved,
  tk: VdToken,
  sc: VdScratch,
  d: number,
): void {
  const dh = d / 2;
  const Emh = sc.dh11.length;
  const { dh11, dh12, dh21, dh22 } = sc;
  dh11.fill(0);
  dh12.fill(0);
  dh21.fill(0);
  dh22.fill(0);
  for (let o = 0; o < dh; o++) {
    const gt = tk.dtop[o];
    const gb = tk.dbot[o];
    for (let r = 0; r < Emh; r++) {
      const w = o * Emh + r;
      grads['v11.weight'][w] += gt * s.h11[tk.off + r];
      grads['v12.weight'][w] += gt * s.h12[tk.off + r];
      grads['v21.weight'][w] += gb * s.h21[tk.off + r];
      grads['v22.weight'][w] += gb * s.h22[tk.off + r];
      dh11[r] += p['v11.weight'][w] * gt;
      dh12[r] += p['v12.weight'][w] * gt;
      dh21[r] += p['v21.weight'][w] * gb;
      dh22[r] += p['v22.weight'][w] * gb;
    }
  }
}

/**
 * Biases Σ_i G1[i] b1[i,:], Σ_j G2[j] b2[j,:]:  db1[i] += G1[i]·dtop;  dG1[i] = dtop·b1[i]  (and for 2).
 * Straight flows h11 = G1·a1, h22 = G2·a2:  dG1[i] += Σ_c dh11[i,c]·a1[i,c];  da1 = G1·dh11  (and for 2).
 */
function vdStraightBackward(
  grads: MonetVdParams,
  p: MonetVdParams,
  s: MonetVdSaved,
  tk: VdToken,
  sc: VdScratch,
  dims: MonetMoeDims,
): void {
  const { d, E } = dims;
  const dh = d / 2;
  const mh = dims.m / 2;
  for (let i = 0; i < E; i++) {
    let s1 = 0;
    let s2 = 0;
    for (let o = 0; o < dh; o++) {
      grads.b1[i * dh + o] += sc.G1[i] * tk.dtop[o];
      grads.b2[i * dh + o] += sc.G2[i] * tk.dbot[o];
      s1 += tk.dtop[o] * p.b1[i * dh + o];
      s2 += tk.dbot[o] * p.b2[i * dh + o];
    }
    for (let c = 0; c < mh; c++) {
      const k = i * mh + c;
      s1 += sc.dh11[k] * s.a1[tk.off + k];
      s2 += sc.dh22[k] * s.a2[tk.off + k];
      sc.da1[k] = sc.G1[i] * sc.dh11[k];
      sc.da2[k] = sc.G2[i] * sc.dh22[k];
    }
    sc.dG1[i] = s1;
    sc.dG2[i] = s2;
  }
}

/** G1[i] = Σ_h g1[h,i]: every head gets dG1[i] (and for 2). */
function vdHeadSumBackward(tk: VdToken, sc: VdScratch, H: number, E: number): void {
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < E; i++) {
      tk.dg1[h * E + i] += sc.dG1[i];
      tk.dg2[h * E + i] += sc.dG2[i];
    }
  }
}

/**
 * Cross flows h12[i,c] = Σ_h g1[h,i]·c2[h,c], h21[j,c] = Σ_h g2[h,j]·c1[h,c]:
 *   dg1[h,i] += Σ_c dh12[i,c]·c2[h,c];  dc2[h,c] = Σ_i g1[h,i]·dh12[i,c]   (and symmetrically for 2 / c1)
 */
function vdCrossBackward(s: MonetVdSaved, tk: VdToken, sc: VdScratch, H: number, E: number, mh: number): void {
  sc.dc1.fill(0);
  sc.dc2.fill(0);
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < E; i++) {
      const w1 = tk.g1[h * E + i];
      const w2 = tk.g2[h * E + i];
      let s12 = 0;
      let s21 = 0;
      for (let c = 0; c < mh; c++) {
        s12 += sc.dh12[i * mh + c] * s.c2[tk.coff + h * mh + c];
        s21 += sc.dh21[i * mh + c] * s.c1[tk.coff + h * mh + c];
        sc.dc2[h * mh + c] += w1 * sc.dh12[i * mh + c];
        sc.dc1[h * mh + c] += w2 * sc.dh21[i * mh + c];
      }
      tk.dg1[h * E + i] += s12;
      tk.dg2[h * E + i] += s21;
    }
  }
}

/**
 * c1[h,c] = Σ_i g1[h,i]·a1[i,c]:  da1[i,c] += Σ_h g1[h,i]·dc1[h,c];  dg1[h,i] += Σ_c dc1[h,c]·a1[i,c]
 * c2[h,c] = Σ_j g2[h,j]·a2[j,c]:  da2[j,c] += Σ_h g2[h,j]·dc2[h,c];  dg2[h,j] += Σ_c dc2[h,c]·a2[j,c]
 */
function vdMixBackward(s: MonetVdSaved, tk: VdToken, sc: VdScratch, H: number, E: number, mh: number): void {
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < E; i++) {
      const w1 = tk.g1[h * E + i];
      const w2 = tk.g2[h * E + i];
      let s1 = 0;
      let s2 = 0;
      for (let c = 0; c < mh; c++) {
        const k = i * mh + c;
        sc.da1[k] += w1 * sc.dc1[h * mh + c];
        sc.da2[k] += w2 * sc.dc2[h * mh + c];
        s1 += sc.dc1[h * mh + c] * s.a1[tk.off + k];
        s2 += sc.dc2[h * mh + c] * s.a2[tk.off + k];
      }
      tk.dg1[h * E + i] += s1;
      tk.dg2[h * E + i] += s2;
    }
  }
}

/** relu² and the two input projections: dpre = da·2·max(pre,0);  dU += dpre ⊗ x;  dbias += dpre;  dx += Uᵀ dpre. */
function vdInputBackward(
  dxt: Float64Array, // (d) token t's slice of dx, accumulated
  grads: MonetVdParams,
  p: MonetVdParams,
  s: MonetVdSaved,
  tk: VdToken,
  sc: VdScratch,
  d: number,
): void {
  const Emh = sc.da1.length;
  for (const [W, dW, db, pre, da] of [
    [p['u1.weight'], grads['u1.weight'], grads['u1.bias'], s.pre1, sc.da1],
    [p['u2.weight'], grads['u2.weight'], grads['u2.bias'], s.pre2, sc.da2],
  ] as const) {
    for (let r = 0; r < Emh; r++) {
      const g = da[r] * actGrad('relu2', pre[tk.off + r]);
      if (g === 0) continue;
      db[r] += g;
      for (let c = 0; c < d; c++) {
        dW[r * d + c] += g * tk.xt[c];
        dxt[c] += g * W[r * d + c];
      }
    }
  }
}

/** Backward (accumulates into dx, grads, dg1, dg2): the flows above, token by token. */
export function monetVdBackward(
  dx: Float64Array, // (T, d)
  grads: MonetVdParams,
  dg1: Float64Array, // (T, H, E)
  dg2: Float64Array, // (T, H, E)
  dout: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  p: MonetVdParams,
  s: MonetVdSaved,
  dims: MonetMoeDims,
): void {
  const { T, d, H, E } = dims;
  const mh = dims.m / 2; // m'
  const dh = d / 2; // d'
  const Emh = E * mh;
  const sc: VdScratch = {
    dh11: new Float64Array(Emh),
    dh12: new Float64Array(Emh),
    dh21: new Float64Array(Emh),
    dh22: new Float64Array(Emh),
    da1: new Float64Array(Emh),
    da2: new Float64Array(Emh),
    dc1: new Float64Array(H * mh),
    dc2: new Float64Array(H * mh),
    G1: new Float64Array(E),
    G2: new Float64Array(E),
    dG1: new Float64Array(E),
    dG2: new Float64Array(E),
  };
  for (let t = 0; t < T; t++) {
    const tk: VdToken = {
      off: t * Emh,
      coff: t * H * mh,
      xt: x.subarray(t * d, t * d + d),
      dtop: dout.subarray(t * d, t * d + dh),
      dbot: dout.subarray(t * d + dh, t * d + d),
      g1: g1.subarray(t * H * E, (t + 1) * H * E),
      g2: g2.subarray(t * H * E, (t + 1) * H * E),
      dg1: dg1.subarray(t * H * E, (t + 1) * H * E),
      dg2: dg2.subarray(t * H * E, (t + 1) * H * E),
    };
    sc.G1.fill(0);
    sc.G2.fill(0);
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < E; i++) {
        sc.G1[i] += tk.g1[h * E + i];
        sc.G2[i] += tk.g2[h * E + i];
      }
    }
    vdOutputBackward(grads, p, s, tk, sc, d);
    vdStraightBackward(grads, p, s, tk, sc, dims);
    vdHeadSumBackward(tk, sc, H, E);
    vdCrossBackward(s, tk, sc, H, E, mh);
    vdMixBackward(s, tk, sc, H, E, mh);
    vdInputBackward(dx.subarray(t * d, t * d + d), grads, p, s, tk, sc, d);
  }
}

export const MONET_VD: MonetExpertsImpl = {
  decompose: 'vertical',
  forward: (out, x, g1, g2, p, dims) => monetVdForward(out, x, g1, g2, p as MonetVdParams, dims),
  backward: (dx, grads, dg1, dg2, dout, x, g1, g2, p, saved, dims) =>
    monetVdBackward(
      dx,
      grads as MonetVdParams,
      dg1,
      dg2,
      dout,
      x,
      g1,
      g2,
      p as MonetVdParams,
      saved as MonetVdSaved,
      dims,
    ),
};
