// Monet MoVDE expert mixture (SPEC §1.5, backward §1.10) on a Device (float32) — twin of reference/monet-vd.ts.
//
// Dimension legend: T tokens, d model dim, d' = d/2, H expert heads, E experts per side = √N, m' = moe_dim/2
//
//   a1 = relu²(u1 x + u1.bias), a2 = relu²(u2 x + u2.bias)          (T, E, m') each — the dense projections
//   G1 = Σ_h g1, G2 = Σ_h g2                                         (T, E)
//   monetVdMix (per token, nothing E×E formed):
//     c1[h] = Σ_i g1[h,i] a1[i];  c2[h] = Σ_j g2[h,j] a2[j]
//     h11 = G1·a1;  h12[i] = Σ_h g1[h,i] c2[h];  h21[j] = Σ_h g2[h,j] c1[h];  h22 = G2·a2
//   top = v11·h11 + v12·h12 + G1·b1;  bot = v21·h21 + v22·h22 + G2·b2;  out = [top, bot]
// The four v-matmuls and two u-matmuls carry almost all the FLOPs.

import type { Scope } from '../backend/device.ts';
import type { F32 } from '../backend/kernels.ts';
import { linearBackward, linearForward } from './common.ts';
import type { MonetMoeDims } from './monet-hd.ts';

export interface MonetVdWeights {
  u1: F32; // (E·m', d)
  u1b: F32; // (E·m')
  u2: F32; // (E·m', d)
  u2b: F32; // (E·m')
  v11: F32; // (d', E·m')
  v12: F32;
  v21: F32;
  v22: F32;
  b1: F32; // (E, d')
  b2: F32; // (E, d')
}
export type MonetVdGrads = { [K in keyof MonetVdWeights]: F32 | null };

export interface MonetVdSaved {
  pre1: F32; // (T, E·m')
  pre2: F32;
  a1: F32; // (T, E, m')
  a2: F32;
  G1: F32; // (T, E)
  G2: F32;
  c1: F32; // (T, H, m')
  c2: F32;
  h11: F32; // (T, E, m')
  h12: F32;
  h21: F32;
  h22: F32;
}

/** The halves d' = d/2 and m' = m/2 (both even: src/kinds/monet.ts). */
function halves(dims: MonetMoeDims): { dh: number; mh: number } {
  return { dh: dims.d / 2, mh: dims.m / 2 };
}

export function monetVdForward(
  sc: Scope,
  out: F32,
  x: F32,
  g1: F32,
  g2: F32,
  p: MonetVdWeights,
  dims: MonetMoeDims,
): MonetVdSaved {
  const kn = sc.dev.kernels;
  const { T, d, H, E } = dims;
  const { dh, mh } = halves(dims);
  const Em = E * mh;
  const pre1 = sc.f32(T * Em),
    pre2 = sc.f32(T * Em),
    a1 = sc.f32(T * Em),
    a2 = sc.f32(T * Em);
  linearForward(kn, pre1, x, p.u1, p.u1b, T, d, Em);
  linearForward(kn, pre2, x, p.u2, p.u2b, T, d, Em);
  kn.activation(a1, pre1, { n: T * Em, kind: 'relu2' });
  kn.activation(a2, pre2, { n: T * Em, kind: 'relu2' });
  const G1 = sc.f32(T * E),
    G2 = sc.f32(T * E);
  kn.headSum(G1, g1, { T, H, E });
  kn.headSum(G2, g2, { T, H, E });
  const c1 = sc.f32(T * H * mh),
    c2 = sc.f32(T * H * mh);
  const h11 = sc.f32(T * Em),
    h12 = sc.f32(T * Em),
    h21 = sc.f32(T * Em),
    h22 = sc.f32(T * Em);
  kn.monetVdMix(h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, { T, H, E, m: mh });
  const half = sc.f32(T * dh); // (T, d') one half of the output at a time
  const mm = { M: T, N: dh, K: Em, transA: false, transB: true };
  for (const [top, va, ha, vb, hb, G, b] of [
    [true, p.v11, h11, p.v12, h12, G1, p.b1],
    [false, p.v21, h21, p.v22, h22, G2, p.b2],
  ] as const) {
    kn.matmul(half, ha, va, { ...mm, accumulate: false });
    kn.matmul(half, hb, vb, { ...mm, accumulate: true });
    kn.matmul(half, G, b, { M: T, N: dh, K: E, transA: false, transB: false, accumulate: true });
    kn.copyBlock(out, half, {
      rows: T,
      cols: dh,
      dstLd: d,
      srcLd: dh,
      dstOffset: top ? 0 : dh,
      srcOffset: 0,
      accumulate: false,
    });
  }
  return { pre1, pre2, a1, a2, G1, G2, c1, c2, h11, h12, h21, h22 };
}

/** Backward (accumulates into dx, grads, dg1, dg2). */
export function monetVdBackward(
  sc: Scope,
  dx: F32 | null,
  g: MonetVdGrads,
  dg1: F32,
  dg2: F32,
  dout: F32,
  x: F32,
  g1: F32,
  g2: F32,
  p: MonetVdWeights,
  s: MonetVdSaved,
  dims: MonetMoeDims,
): void {
  const kn = sc.dev.kernels;
  const { T, d, H, E } = dims;
  const { dh, mh } = halves(dims);
  const Em = E * mh;
  const dHalf = sc.f32(T * dh);
  const dh11 = sc.f32(T * Em),
    dh12 = sc.f32(T * Em),
    dh21 = sc.f32(T * Em),
    dh22 = sc.f32(T * Em);
  const dG = sc.f32(T * E);
  for (const [top, va, ha, dha, gva, vb, hb, dhb, gvb, G, b, gb, dgr] of [
    [true, p.v11, s.h11, dh11, g.v11, p.v12, s.h12, dh12, g.v12, s.G1, p.b1, g.b1, dg1],
    [false, p.v21, s.h21, dh21, g.v21, p.v22, s.h22, dh22, g.v22, s.G2, p.b2, g.b2, dg2],
  ] as const) {
    kn.copyBlock(dHalf, dout, {
      rows: T,
      cols: dh,
      dstLd: dh,
      srcLd: d,
      dstOffset: 0,
      srcOffset: top ? 0 : dh,
      accumulate: false,
    });
    linearBackward(kn, dha, gva, null, dHalf, ha, va, T, Em, dh);
    linearBackward(kn, dhb, gvb, null, dHalf, hb, vb, T, Em, dh);
    // half += G·b:  db += Gᵀ·dHalf;  dG = dHalf·bᵀ lands on every head
    if (gb) kn.matmul(gb, G, dHalf, { M: E, N: dh, K: T, transA: true, transB: false, accumulate: true });
    kn.matmul(dG, dHalf, b, { M: T, N: E, K: dh, transA: false, transB: true, accumulate: false });
    kn.headBroadcastAdd(dgr, dG, { T, H, E });
  }
  const da1 = sc.f32(T * Em),
    da2 = sc.f32(T * Em);
  kn.monetVdMixBackward(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, s.a1, s.a2, g1, g2, s.G1, s.G2, s.c1, s.c2, {
    T,
    H,
    E,
    m: mh,
  });
  const dpre = sc.f32(T * Em);
  kn.activationBackward(dpre, da1, s.pre1, { n: T * Em, kind: 'relu2' });
  linearBackward(kn, dx, g.u1, g.u1b, dpre, x, p.u1, T, d, Em);
  kn.fill(dpre, { n: T * Em, value: 0 });
  kn.activationBackward(dpre, da2, s.pre2, { n: T * Em, kind: 'relu2' });
  linearBackward(kn, dx, g.u2, g.u2b, dpre, x, p.u2, T, d, Em);
}
