// Monet MoHDE: mixture of horizontally decomposed experts (docs/spec.md §1.4, backward §1.10), float64.
//
// Dimension legend:
//   T  tokens      d  model dim      H  expert heads      E  experts per side = √N      m  expert dim (moe_dim)
//
// Parameters (official `MonetMoHDE` names, here without the `moe.` prefix):
//   u.weight (E·m, d), u.bias (E·m)    the "bottom halves": expert row-block i is U_i (m, d)
//   v.weight (d, E·m)                  the "top halves": column block j is V_j (d, m)
//   b (E, d)                           per-j output bias (zeros at init)
// Routing weights g1, g2 (T, H, E) come from a Monet router (reference/monet-router.ts).
//
// The model (expert view, docs/spec.md §1.4; reference/monet-expert-view.ts computes it literally):
//   composite expert (i, j): E_ij(x) = V_j relu²(U_i x + u.bias_i) + b_j,   gate g_ij = Σ_h g1[h,i]·g2[h,j]
//   out = Σ_{i,j} g_ij E_ij(x)                       N = E² experts, never formed here
// The efficient order (the official einsum "btim,bthi,bthj->btjm") contracts i first, then h:
//   a[i,c]  = relu²(pre[i·m + c]),  pre = u x + u.bias                    (E, m) all E·m hidden units, every token
//   cc[h,c] = Σ_i g1[h,i]·a[i,c]                                          (H, m)
//   y[j,c]  = Σ_h g2[h,j]·cc[h,c]                                         (E, m)
//   out     = v·flat(y) + Σ_j G2[j]·b[j,:],   G2[j] = Σ_h g2[h,j]          (d)
// Per token this touches O(E·m·d + H·E·m) numbers; nothing of size E×E or N.
// (The bias term: Σ_ij g_ij b_j = Σ_h (Σ_i g1[h,i]) Σ_j g2[h,j] b_j, and Σ_i g1[h,i] = 1.)

import { act, actGrad } from './activations.ts';
import type { MonetExpertsImpl } from './monet-layer.ts';

export interface MonetMoeDims {
  T: number;
  d: number;
  H: number;
  E: number;
  m: number; // moe_dim (HD: per-expert hidden size; VD: the two halves have m/2 each)
}

export type MonetHdParams = Record<'u.weight' | 'u.bias' | 'v.weight' | 'b', Float64Array>;

/** What forward saves for backward (per token, flattened over T). */
export interface MonetHdSaved {
  pre: Float64Array; // (T, E·m) u x + u.bias, for relu²'
  a: Float64Array; // (T, E, m) relu²(pre)
  cc: Float64Array; // (T, H, m) Σ_i g1·a
  y: Float64Array; // (T, E, m) Σ_h g2·cc, the input of v
}

export function monetHdForward(
  out: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  p: MonetHdParams,
  dims: MonetMoeDims,
): MonetHdSaved {
  const { T, d, H, E, m } = dims;
  const Em = E * m;
  const pre = new Float64Array(T * Em); // (T, E·m)
  const a = new Float64Array(T * Em); // (T, E, m)
  const cc = new Float64Array(T * H * m); // (T, H, m)
  const y = new Float64Array(T * Em); // (T, E, m)
  const U = p['u.weight']; // (E·m, d)
  const ub = p['u.bias']; // (E·m)
  const V = p['v.weight']; // (d, E·m)
  const b = p.b; // (E, d)
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * d, t * d + d); // (d)
    const pre_t = pre.subarray(t * Em, t * Em + Em); // (E·m)
    const a_t = a.subarray(t * Em, t * Em + Em); // (E, m)
    const cc_t = cc.subarray(t * H * m, (t + 1) * H * m); // (H, m)
    const y_t = y.subarray(t * Em, t * Em + Em); // (E, m)
    const g1_t = g1.subarray(t * H * E, (t + 1) * H * E); // (H, E)
    const g2_t = g2.subarray(t * H * E, (t + 1) * H * E); // (H, E)
    const out_t = out.subarray(t * d, t * d + d); // (d)
    // pre = u x + u.bias; a = relu²(pre)  — the dense projection: every expert's hidden units are computed
    for (let r = 0; r < Em; r++) {
      let s = ub[r];
      for (let c = 0; c < d; c++) s += U[r * d + c] * xt[c];
      pre_t[r] = s;
      a_t[r] = act('relu2', s);
    }
    // cc[h,c] = Σ_i g1[h,i]·a[i,c]   — einsum "im,hi->hm" (the bottom-half mixture of each head)
    for (let h = 0; h < H; h++) {
      for (let c = 0; c < m; c++) {
        let s = 0;
        for (let i = 0; i < E; i++) s += g1_t[h * E + i] * a_t[i * m + c];
        cc_t[h * m + c] = s;
      }
    }
    // y[j,c] = Σ_h g2[h,j]·cc[h,c]   — einsum "hm,hj->jm" (route each head's mixture to the top halves j)
    for (let j = 0; j < E; j++) {
      for (let c = 0; c < m; c++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += g2_t[h * E + j] * cc_t[h * m + c];
        y_t[j * m + c] = s;
      }
    }
    // out = v·flat(y) + Σ_j G2[j]·b[j,:]   — the bias term is einsum "hj,jd->d"
    for (let o = 0; o < d; o++) {
      let s = 0;
      for (let r = 0; r < Em; r++) s += V[o * Em + r] * y_t[r];
      out_t[o] = s;
    }
    for (let j = 0; j < E; j++) {
      let G2 = 0;
      for (let h = 0; h < H; h++) G2 += g2_t[h * E + j];
      if (G2 === 0) continue;
      for (let o = 0; o < d; o++) out_t[o] += G2 * b[j * d + o];
    }
  }
  return { pre, a, cc, y };
}

/**
 * Backward (accumulates into dx, grads, dg1, dg2). dg1/dg2 are then passed on to the router backward, together
 * with the other layers' contributions when the router is shared by a group.
 */
export function monetHdBackward(
  dx: Float64Array, // (T, d)
  grads: MonetHdParams, // same shapes as the params
  dg1: Float64Array, // (T, H, E)
  dg2: Float64Array, // (T, H, E)
  dout: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  g1: Float64Array, // (T, H, E)
  g2: Float64Array, // (T, H, E)
  p: MonetHdParams,
  saved: MonetHdSaved,
  dims: MonetMoeDims,
): void {
  const { T, d, H, E, m } = dims;
  const Em = E * m;
  const U = p['u.weight'];
  const V = p['v.weight'];
  const b = p.b;
  const dU = grads['u.weight'];
  const dub = grads['u.bias'];
  const dV = grads['v.weight'];
  const db = grads.b;
  const dy = new Float64Array(Em); // (E, m) one token
  const dcc = new Float64Array(H * m); // (H, m)
  const dpre = new Float64Array(Em); // (E·m)
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * d, t * d + d);
    const dout_t = dout.subarray(t * d, t * d + d);
    const pre_t = saved.pre.subarray(t * Em, t * Em + Em);
    const a_t = saved.a.subarray(t * Em, t * Em + Em);
    const cc_t = saved.cc.subarray(t * H * m, (t + 1) * H * m);
    const y_t = saved.y.subarray(t * Em, t * Em + Em);
    const g1_t = g1.subarray(t * H * E, (t + 1) * H * E);
    const g2_t = g2.subarray(t * H * E, (t + 1) * H * E);
    const dg1_t = dg1.subarray(t * H * E, (t + 1) * H * E);
    const dg2_t = dg2.subarray(t * H * E, (t + 1) * H * E);
    // out = v·flat(y):  dV += dout ⊗ y;  dy = Vᵀ dout
    dy.fill(0);
    for (let o = 0; o < d; o++) {
      const g = dout_t[o];
      for (let r = 0; r < Em; r++) {
        dV[o * Em + r] += g * y_t[r];
        dy[r] += V[o * Em + r] * g;
      }
    }
    // bias term Σ_h Σ_j g2[h,j]·b[j,:]:  db[j] += G2[j]·dout;  dg2[h,j] += dout·b[j]
    for (let j = 0; j < E; j++) {
      let G2 = 0;
      for (let h = 0; h < H; h++) G2 += g2_t[h * E + j];
      let dotb = 0;
      for (let o = 0; o < d; o++) {
        db[j * d + o] += G2 * dout_t[o];
        dotb += dout_t[o] * b[j * d + o];
      }
      for (let h = 0; h < H; h++) dg2_t[h * E + j] += dotb;
    }
    // y[j,c] = Σ_h g2[h,j]·cc[h,c]:  dg2[h,j] += Σ_c dy[j,c]·cc[h,c];  dcc[h,c] = Σ_j g2[h,j]·dy[j,c]
    dcc.fill(0);
    for (let h = 0; h < H; h++) {
      for (let j = 0; j < E; j++) {
        const gj = g2_t[h * E + j];
        let s = 0;
        for (let c = 0; c < m; c++) {
          s += dy[j * m + c] * cc_t[h * m + c];
          dcc[h * m + c] += gj * dy[j * m + c];
        }
        dg2_t[h * E + j] += s;
      }
    }
    // cc[h,c] = Σ_i g1[h,i]·a[i,c]:  dg1[h,i] += Σ_c dcc[h,c]·a[i,c];  da[i,c] = Σ_h g1[h,i]·dcc[h,c]
    // then through relu²: dpre = da·2·max(pre, 0)
    for (let i = 0; i < E; i++) {
      for (let c = 0; c < m; c++) {
        let da = 0;
        for (let h = 0; h < H; h++) da += g1_t[h * E + i] * dcc[h * m + c];
        dpre[i * m + c] = da * actGrad('relu2', pre_t[i * m + c]);
      }
      for (let h = 0; h < H; h++) {
        let s = 0;
        for (let c = 0; c < m; c++) s += dcc[h * m + c] * a_t[i * m + c];
        dg1_t[h * E + i] += s;
      }
    }
    // pre = u x + u.bias:  dU += dpre ⊗ x;  du.bias += dpre;  dx += Uᵀ dpre
    for (let r = 0; r < Em; r++) {
      const g = dpre[r];
      if (g === 0) continue;
      dub[r] += g;
      for (let c = 0; c < d; c++) {
        dU[r * d + c] += g * xt[c];
        dx[t * d + c] += g * U[r * d + c];
      }
    }
  }
}

export const MONET_HD: MonetExpertsImpl = {
  decompose: 'horizontal',
  forward: (out, x, g1, g2, p, dims) => monetHdForward(out, x, g1, g2, p as MonetHdParams, dims),
  backward: (dx, grads, dg1, dg2, dout, x, g1, g2, p, saved, dims) =>
    monetHdBackward(
      dx,
      grads as MonetHdParams,
      dg1,
      dg2,
      dout,
      x,
      g1,
      g2,
      p as MonetHdParams,
      saved as MonetHdSaved,
      dims,
    ),
};
