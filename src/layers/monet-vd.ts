// Monet MoVDE expert mixture (docs/spec.md §1.5, backward §1.10) on a Device (float32) — twin of reference/monet-vd.ts.
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
import { linearBackward, linearForward, linearProduct, type Weight } from './common.ts';
import type { MonetMoeDims } from './monet-hd.ts';

/** The experts' tensors; the matrices as `W` (forward: float32 or bf16 kept packed; backward: float32). */
export interface MonetVdWeights<W extends Weight = F32> {
  u1: W; // (E·m', d)
  u1b: F32; // (E·m')
  u2: W; // (E·m', d)
  u2b: F32; // (E·m')
  v11: W; // (d', E·m')
  v12: W;
  v21: W;
  v22: W;
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
  p: MonetVdWeights<Weight>,
  dims: MonetMoeDims,
): MonetVdSaved {
  const kn = sc.dev.kernels;
  const { T, d, H, E } = dims;
  const { mh } = halves(dims);
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
  monetVdOutput(sc, out, { h11, h12, h21, h22, G1, G2 }, p, dims);
  return { pre1, pre2, a1, a2, G1, G2, c1, c2, h11, h12, h21, h22 };
}

/** The mixes that the output stage reads: h11, h12, h21, h22 (T, E·m'), G1, G2 (T, E). */
export type MonetVdMixes = Pick<MonetVdSaved, 'h11' | 'h12' | 'h21' | 'h22' | 'G1' | 'G2'>;

/**
 * The forward's output stage: out (T, d) = [v11·h11 + v12·h12 + G1·b1, v21·h21 + v22·h22 + G2·b2] (overwritten).
 * Linear in the mixes: inspection runs it on the mixes of the composite experts it removes
 * (src/interp/wasm-forward.ts).
 */
export function monetVdOutput(sc: Scope, out: F32, x: MonetVdMixes, p: MonetVdWeights<Weight>, dims: MonetMoeDims) {
  const kn = sc.dev.kernels;
  const { T, d, E } = dims;
  const { dh, mh } = halves(dims);
  const Em = E * mh;
  const half = sc.f32(T * dh); // (T, d') one half of the output at a time
  for (const [top, va, ha, vb, hb, G, b] of [
    [true, p.v11, x.h11, p.v12, x.h12, x.G1, p.b1],
    [false, p.v21, x.h21, p.v22, x.h22, x.G2, p.b2],
  ] as const) {
    linearProduct(kn, half, ha, va, T, Em, dh, false);
    linearProduct(kn, half, hb, vb, T, Em, dh, true);
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
}

/** One half of the output (top: v11, v12, b1 and router 1; bottom: v21, v22, b2 and router 2), by name. */
interface VdOutputHalf {
  srcOffset: number; // where the half starts in a row of dout (0 or d')
  /** The half's two projections: weight (d', E·m'), its input h (T, E·m'), dh to write, weight gradient. */
  proj: Array<{ v: F32; h: F32; dh: F32; dv: F32 | null }>;
  G: F32; // (T, E) Σ_h g of this half's router
  b: F32; // (E, d') bias
  db: F32 | null;
  dg: F32; // (T, H, E) this half's router gradient (accumulated)
}

/** half = Σ v·h + G·b:  dv += dHalfᵀ·h; dh = dHalf·v; db += Gᵀ·dHalf; dg += dHalf·bᵀ on every head. */
function vdOutputHalfBackward(sc: Scope, dHalf: F32, dG: F32, dout: F32, half: VdOutputHalf, dims: MonetMoeDims): void {
  const kn = sc.dev.kernels;
  const { T, d, H, E } = dims;
  const { dh, mh } = halves(dims);
  const cols = { rows: T, cols: dh, dstLd: dh, srcLd: d, dstOffset: 0, srcOffset: half.srcOffset };
  kn.copyBlock(dHalf, dout, { ...cols, accumulate: false });
  for (const pr of half.proj) linearBackward(kn, pr.dh, pr.dv, null, dHalf, pr.h, pr.v, T, E * mh, dh);
  if (half.db) kn.matmul(half.db, half.G, dHalf, { M: E, N: dh, K: T, transA: true, transB: false, accumulate: true });
  kn.matmul(dG, dHalf, half.b, { M: T, N: E, K: dh, transA: false, transB: true, accumulate: false });
  kn.headBroadcastAdd(half.dg, dG, { T, H, E });
}

/** Backward (accumulates into dx, grads, dg1, dg2), in its flows: output halves, the mixes, the input halves. */
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
  const dHalf = sc.f32(T * dh); // (T, d') one half of dout, contiguous
  const dG = sc.f32(T * E); // (T, E)
  const dh11 = sc.f32(T * Em);
  const dh12 = sc.f32(T * Em);
  const dh21 = sc.f32(T * Em);
  const dh22 = sc.f32(T * Em);
  const top: VdOutputHalf = {
    srcOffset: 0,
    proj: [
      { v: p.v11, h: s.h11, dh: dh11, dv: g.v11 },
      { v: p.v12, h: s.h12, dh: dh12, dv: g.v12 },
    ],
    G: s.G1,
    b: p.b1,
    db: g.b1,
    dg: dg1,
  };
  const bottom: VdOutputHalf = {
    srcOffset: dh,
    proj: [
      { v: p.v21, h: s.h21, dh: dh21, dv: g.v21 },
      { v: p.v22, h: s.h22, dh: dh22, dv: g.v22 },
    ],
    G: s.G2,
    b: p.b2,
    db: g.b2,
    dg: dg2,
  };
  vdOutputHalfBackward(sc, dHalf, dG, dout, top, dims);
  vdOutputHalfBackward(sc, dHalf, dG, dout, bottom, dims);
  // straight and cross flows and the mixes, back to the activations a1, a2 and the routing weights
  const da1 = sc.f32(T * Em);
  const da2 = sc.f32(T * Em);
  const m = mh;
  kn.monetVdMixBackward(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, s.a1, s.a2, g1, g2, s.G1, s.G2, s.c1, s.c2, {
    T,
    H,
    E,
    m,
  });
  // the input halves: a = relu²(u x + u.bias)
  const dpre = sc.f32(T * Em);
  kn.activationBackward(dpre, da1, s.pre1, { n: T * Em, kind: 'relu2' });
  linearBackward(kn, dx, g.u1, g.u1b, dpre, x, p.u1, T, d, Em);
  kn.fill(dpre, { n: T * Em, value: 0 });
  kn.activationBackward(dpre, da2, s.pre2, { n: T * Em, kind: 'relu2' });
  linearBackward(kn, dx, g.u2, g.u2b, dpre, x, p.u2, T, d, Em);
}
