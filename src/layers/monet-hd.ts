// Monet MoHDE expert mixture (docs/spec.md §1.4, backward §1.10) on a Device (float32) — twin of reference/monet-hd.ts.
//
// Dimension legend: T tokens, d model dim, H expert heads, E experts per side = √N, m expert dim (moe_dim)
//
//   pre = u x + u.bias (T, E·m);  a = relu²(pre)                     the dense projection: all E·m hidden units
//   monetHdMix:  cc[h,c] = Σ_i g1[h,i]·a[i,c];  y[j,c] = Σ_h g2[h,j]·cc[h,c]     (per token; nothing E×E is formed)
//   out = v·flat(y) + G2·b,  G2[j] = Σ_h g2[h,j]                      (T, d)
// The two matmuls (u, v) carry almost all the FLOPs; the contractions are O(T·H·E·m).

import type { Scope } from '../backend/device.ts';
import type { F32 } from '../backend/kernels.ts';
import { linearBackward, linearForward, type Weight } from './common.ts';

export interface MonetMoeDims {
  T: number;
  d: number;
  H: number;
  E: number;
  m: number; // moe_dim (VD: each half has m/2)
}

/** The experts' tensors; the matrices as `W` (forward: float32 or bf16 kept packed; backward: float32). */
export interface MonetHdWeights<W extends Weight = F32> {
  u: W; // (E·m, d)
  ub: F32; // (E·m)
  v: W; // (d, E·m)
  b: F32; // (E, d)
}
export type MonetHdGrads = { [K in keyof MonetHdWeights]: F32 | null };

export interface MonetHdSaved {
  pre: F32; // (T, E·m)
  a: F32; // (T, E, m)
  cc: F32; // (T, H, m)
  y: F32; // (T, E, m)
  G2: F32; // (T, E)
}

export function monetHdForward(
  sc: Scope,
  out: F32,
  x: F32,
  g1: F32,
  g2: F32,
  p: MonetHdWeights<Weight>,
  dims: MonetMoeDims,
): MonetHdSaved {
  const kn = sc.dev.kernels;
  const { T, d, H, E, m } = dims;
  const Em = E * m;
  const pre = sc.f32(T * Em),
    a = sc.f32(T * Em),
    cc = sc.f32(T * H * m),
    y = sc.f32(T * Em),
    G2 = sc.f32(T * E);
  linearForward(kn, pre, x, p.u, p.ub, T, d, Em);
  kn.activation(a, pre, { n: T * Em, kind: 'relu2' });
  kn.monetHdMix(y, cc, a, g1, g2, { T, H, E, m });
  kn.headSum(G2, g2, { T, H, E });
  monetHdOutput(sc, out, y, G2, p, dims);
  return { pre, a, cc, y, G2 };
}

/**
 * The forward's output stage: out (T, d) = v·flat(y) + G2·b (overwritten), y (T, E, m), G2 (T, E); the bias term is
 * Σ_h Σ_j g2[h,j]·b[j,:] = G2·b. Linear in (y, G2): inspection runs it on the mixes of the composite experts it
 * removes (src/interp/wasm-forward.ts).
 */
export function monetHdOutput(sc: Scope, out: F32, y: F32, G2: F32, p: MonetHdWeights<Weight>, dims: MonetMoeDims) {
  const kn = sc.dev.kernels;
  const { T, d, E, m } = dims;
  linearForward(kn, out, y, p.v, null, T, E * m, d);
  kn.matmul(out, G2, p.b, { M: T, N: d, K: E, transA: false, transB: false, accumulate: true });
}

/** Backward (accumulates into dx, grads, dg1, dg2; dg1/dg2 then go to the router backward). */
export function monetHdBackward(
  sc: Scope,
  dx: F32 | null,
  g: MonetHdGrads,
  dg1: F32,
  dg2: F32,
  dout: F32,
  x: F32,
  g1: F32,
  g2: F32,
  p: MonetHdWeights,
  s: MonetHdSaved,
  dims: MonetMoeDims,
): void {
  const kn = sc.dev.kernels;
  const { T, d, H, E, m } = dims;
  const Em = E * m;
  const dy = sc.f32(T * Em);
  linearBackward(kn, dy, g.v, null, dout, s.y, p.v, T, Em, d);
  // out += G2·b:  db += G2ᵀ·dout;  dG2 = dout·bᵀ, and G2 = Σ_h g2 sends dG2 to every head
  if (g.b) kn.matmul(g.b, s.G2, dout, { M: E, N: d, K: T, transA: true, transB: false, accumulate: true });
  const dG2 = sc.f32(T * E);
  kn.matmul(dG2, dout, p.b, { M: T, N: E, K: d, transA: false, transB: true, accumulate: false });
  kn.headBroadcastAdd(dg2, dG2, { T, H, E });
  const da = sc.f32(T * Em);
  kn.monetHdMixBackward(da, dg1, dg2, dy, s.a, g1, g2, s.cc, { T, H, E, m });
  const dpre = sc.f32(T * Em);
  kn.activationBackward(dpre, da, s.pre, { n: T * Em, kind: 'relu2' });
  linearBackward(kn, dx, g.u, g.ub, dpre, x, p.u, T, d, Em);
}
