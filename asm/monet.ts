// Monet: router selection + softmax, aux losses, and the HD / VD expert-mixing contractions (docs/spec.md §1.3–1.10).
//
// Dimension legend: T tokens, H expert heads, E experts per side = √N, m expert dim (VD: m = moe_dim/2)
//
// The contractions run per token over (H, E) gates and (E, m) hidden units — O(H·E·m) per token, never anything
// E×E (the N composite experts are never formed). Rows of m floats are combined with SIMD (rowAxpy / rowDot).
// Zero gates are skipped in the forward sums: a router selects about moe_topk of E experts per head, so most g are 0.

import { addf, axpyf as rowAxpy, dotf as rowDot, ld, ldi, st, sti } from './common';

// @ts-ignore: decorator
@inline function row(p: usize, r: i32, m: i32): usize {
  return p + (<usize>(r * m) << 2);
}

export function monetRoute(g: usize, mask: usize, z: usize, mean: usize, variance: usize, T: i32, H: i32, E: i32,
  sigma: f32, eps: f32): void {
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * E;
      const mu = ld(mean, h);
      const rs = <f32>(1.0 / Math.sqrt(<f64>ld(variance, h) + <f64>eps));
      let nmax: f32 = -Infinity;
      for (let i = 0; i < E; i++) nmax = max(nmax, (ld(z, o + i) - mu) * rs);
      const thr = min(nmax, sigma);
      let zmax: f32 = -Infinity;
      for (let i = 0; i < E; i++) {
        const sel = (ld(z, o + i) - mu) * rs >= thr;
        sti(mask, o + i, sel ? 1 : 0);
        if (sel) zmax = max(zmax, ld(z, o + i));
      }
      let s: f64 = 0;
      for (let i = 0; i < E; i++) {
        const e = ldi(mask, o + i) ? Math.exp(<f64>(ld(z, o + i) - zmax)) : 0;
        st(g, o + i, <f32>e);
        s += e;
      }
      const inv = <f32>(1.0 / s);
      for (let i = 0; i < E; i++) st(g, o + i, ld(g, o + i) * inv);
    }
  }
}

/** ḡ[h,i] = mean over t of g[t,h,i] into gbar (H·E floats, scratch). */
function batchMean(gbar: usize, g: usize, T: i32, HE: i32): void {
  for (let j = 0; j < HE; j++) st(gbar, j, 0);
  for (let t = 0; t < T; t++) for (let j = 0; j < HE; j++) addf(gbar, j, ld(g, t * HE + j));
  const inv = <f32>(1.0 / <f64>T);
  for (let j = 0; j < HE; j++) st(gbar, j, ld(gbar, j) * inv);
}

/** scratch: H·E words. */
export function monetUnifLoss(loss: usize, g: usize, T: i32, H: i32, E: i32, eps: f64, scale: f64,
  scratch: usize): void {
  batchMean(scratch, g, T, H * E);
  let s: f64 = 0;
  for (let j = 0; j < H * E; j++) s += Math.log(<f64>ld(scratch, j) + eps);
  addf(loss, 0, <f32>(scale * (-s / (2.0 * H * E))));
}

/** scratch: H·E words. */
export function monetUnifBackward(dg: usize, g: usize, T: i32, H: i32, E: i32, eps: f64, scale: f64,
  scratch: usize): void {
  const HE = H * E;
  batchMean(scratch, g, T, HE);
  for (let j = 0; j < HE; j++)
    st(scratch, j, <f32>((scale * (-1.0 / (2.0 * HE))) / (<f64>T * (<f64>ld(scratch, j) + eps))));
  for (let t = 0; t < T; t++) for (let j = 0; j < HE; j++) addf(dg, t * HE + j, ld(scratch, j));
}

export function monetAmbLoss(loss: usize, g: usize, T: i32, H: i32, E: i32, scale: f64): void {
  let s: f64 = 0;
  for (let th = 0; th < T * H; th++) {
    let mx: f32 = -Infinity;
    for (let i = 0; i < E; i++) mx = max(mx, ld(g, th * E + i));
    s += 1 - <f64>mx;
  }
  addf(loss, 0, <f32>((scale * s) / (2.0 * H * T)));
}

/** For the tokens t0 ≤ t < t1 of T (the loader splits the tokens between threads; the constant uses all T). */
export function monetAmbBackward(dg: usize, g: usize, T: i32, H: i32, E: i32, scale: f64, t0: i32, t1: i32): void {
  const v = <f32>(-scale / (2.0 * H * T));
  for (let th = t0 * H; th < t1 * H; th++) {
    let best = 0;
    for (let i = 1; i < E; i++) if (ld(g, th * E + i) > ld(g, th * E + best)) best = i;
    addf(dg, th * E + best, v);
  }
}

export function headSum(G: usize, g: usize, T: i32, H: i32, E: i32): void {
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < E; i++) st(G, t * E + i, 0);
    for (let h = 0; h < H; h++) rowAxpy(row(G, t, E), row(g, t * H + h, E), 1, E);
  }
}

export function headBroadcastAdd(dg: usize, dG: usize, T: i32, H: i32, E: i32): void {
  for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) rowAxpy(row(dg, t * H + h, E), row(dG, t, E), 1, E);
}

export function monetHdMix(y: usize, cc: usize, a: usize, g1: usize, g2: usize, T: i32, H: i32, E: i32, m: i32): void {
  for (let t = 0; t < T; t++) {
    const at = row(a, t, E * m), yt = row(y, t, E * m), ct = row(cc, t, H * m);
    const g1t = row(g1, t, H * E), g2t = row(g2, t, H * E);
    memory.fill(ct, 0, <usize>(H * m) << 2);
    memory.fill(yt, 0, <usize>(E * m) << 2);
    // cc[h,:] = Σ_i g1[h,i]·a[i,:]     (einsum "im,hi->hm")
    for (let h = 0; h < H; h++)
      for (let i = 0; i < E; i++) {
        const gv = ld(g1t, h * E + i);
        if (gv != 0) rowAxpy(row(ct, h, m), row(at, i, m), gv, m);
      }
    // y[j,:] = Σ_h g2[h,j]·cc[h,:]     (einsum "hm,hj->jm")
    for (let h = 0; h < H; h++)
      for (let j = 0; j < E; j++) {
        const gv = ld(g2t, h * E + j);
        if (gv != 0) rowAxpy(row(yt, j, m), row(ct, h, m), gv, m);
      }
  }
}

/** scratch: H·m words (dcc of one token). */
export function monetHdMixBackward(da: usize, dg1: usize, dg2: usize, dy: usize, a: usize, g1: usize, g2: usize,
  cc: usize,
  T: i32, H: i32, E: i32, m: i32, scratch: usize): void {
  const dcc = scratch;
  for (let t = 0; t < T; t++) {
    const at = row(a, t, E * m), dat = row(da, t, E * m), dyt = row(dy, t, E * m), ct = row(cc, t, H * m);
    const g1t = row(g1, t, H * E), g2t = row(g2, t, H * E), dg1t = row(dg1, t, H * E), dg2t = row(dg2, t, H * E);
    memory.fill(dcc, 0, <usize>(H * m) << 2);
    // y[j] = Σ_h g2[h,j] cc[h]:  dg2[h,j] += dy[j]·cc[h];  dcc[h] += g2[h,j]·dy[j]
    for (let h = 0; h < H; h++)
      for (let j = 0; j < E; j++) {
        addf(dg2t, h * E + j, rowDot(row(dyt, j, m), row(ct, h, m), m));
        const gv = ld(g2t, h * E + j);
        if (gv != 0) rowAxpy(row(dcc, h, m), row(dyt, j, m), gv, m);
      }
    // cc[h] = Σ_i g1[h,i] a[i]:  dg1[h,i] += dcc[h]·a[i];  da[i] += g1[h,i]·dcc[h]
    for (let h = 0; h < H; h++)
      for (let i = 0; i < E; i++) {
        addf(dg1t, h * E + i, rowDot(row(dcc, h, m), row(at, i, m), m));
        const gv = ld(g1t, h * E + i);
        if (gv != 0) rowAxpy(row(dat, i, m), row(dcc, h, m), gv, m);
      }
  }
}

export function monetVdMix(h11: usize, h12: usize, h21: usize, h22: usize, c1: usize, c2: usize, a1: usize, a2: usize,
  g1: usize, g2: usize, G1: usize, G2: usize, T: i32, H: i32, E: i32, m: i32): void {
  const Em = E * m, Hm = H * m, HE = H * E;
  for (let t = 0; t < T; t++) {
    const a1t = row(a1, t, Em), a2t = row(a2, t, Em), c1t = row(c1, t, Hm), c2t = row(c2, t, Hm);
    const g1t = row(g1, t, HE), g2t = row(g2, t, HE);
    const h11t = row(h11, t, Em), h12t = row(h12, t, Em), h21t = row(h21, t, Em), h22t = row(h22, t, Em);
    memory.fill(c1t, 0, <usize>Hm << 2);
    memory.fill(c2t, 0, <usize>Hm << 2);
    memory.fill(h11t, 0, <usize>Em << 2);
    memory.fill(h12t, 0, <usize>Em << 2);
    memory.fill(h21t, 0, <usize>Em << 2);
    memory.fill(h22t, 0, <usize>Em << 2);
    // c1[h] = Σ_i g1[h,i] a1[i];  c2[h] = Σ_j g2[h,j] a2[j]
    for (let h = 0; h < H; h++)
      for (let i = 0; i < E; i++) {
        const u = ld(g1t, h * E + i), v = ld(g2t, h * E + i);
        if (u != 0) rowAxpy(row(c1t, h, m), row(a1t, i, m), u, m);
        if (v != 0) rowAxpy(row(c2t, h, m), row(a2t, i, m), v, m);
      }
    // straight flows h11 = G1·a1, h22 = G2·a2; cross flows h12[i] = Σ_h g1[h,i] c2[h], h21[j] = Σ_h g2[h,j] c1[h]
    for (let i = 0; i < E; i++) {
      rowAxpy(row(h11t, i, m), row(a1t, i, m), ld(G1, t * E + i), m);
      rowAxpy(row(h22t, i, m), row(a2t, i, m), ld(G2, t * E + i), m);
      for (let h = 0; h < H; h++) {
        const u = ld(g1t, h * E + i), v = ld(g2t, h * E + i);
        if (u != 0) rowAxpy(row(h12t, i, m), row(c2t, h, m), u, m);
        if (v != 0) rowAxpy(row(h21t, i, m), row(c1t, h, m), v, m);
      }
    }
  }
}

/** scratch: 2·H·m words (dc1, dc2 of one token). */
export function monetVdMixBackward(da1: usize, da2: usize, dg1: usize, dg2: usize, dh11: usize, dh12: usize,
  dh21: usize, dh22: usize,
  a1: usize, a2: usize, g1: usize, g2: usize, G1: usize, G2: usize, c1: usize, c2: usize, T: i32, H: i32, E: i32,
    m: i32, scratch: usize): void {
  const Em = E * m, Hm = H * m, HE = H * E;
  const dc1 = scratch, dc2 = scratch + (<usize>Hm << 2);
  for (let t = 0; t < T; t++) {
    const a1t = row(a1, t, Em), a2t = row(a2, t, Em), c1t = row(c1, t, Hm), c2t = row(c2, t, Hm);
    const da1t = row(da1, t, Em), da2t = row(da2, t, Em);
    const g1t = row(g1, t, HE), g2t = row(g2, t, HE), dg1t = row(dg1, t, HE), dg2t = row(dg2, t, HE);
    const d11 = row(dh11, t, Em), d12 = row(dh12, t, Em), d21 = row(dh21, t, Em), d22 = row(dh22, t, Em);
    memory.fill(dc1, 0, <usize>(2 * Hm) << 2);
    for (let i = 0; i < E; i++) {
      // straight flows: dG lands on every head
      const dG1 = rowDot(row(d11, i, m), row(a1t, i, m), m);
      const dG2 = rowDot(row(d22, i, m), row(a2t, i, m), m);
      rowAxpy(row(da1t, i, m), row(d11, i, m), ld(G1, t * E + i), m);
      rowAxpy(row(da2t, i, m), row(d22, i, m), ld(G2, t * E + i), m);
      // cross flows
      for (let h = 0; h < H; h++) {
        const s12 = rowDot(row(d12, i, m), row(c2t, h, m), m);
        const s21 = rowDot(row(d21, i, m), row(c1t, h, m), m);
        const u = ld(g1t, h * E + i), v = ld(g2t, h * E + i);
        if (u != 0) rowAxpy(row(dc2, h, m), row(d12, i, m), u, m);
        if (v != 0) rowAxpy(row(dc1, h, m), row(d21, i, m), v, m);
        addf(dg1t, h * E + i, dG1 + s12);
        addf(dg2t, h * E + i, dG2 + s21);
      }
    }
    // c1[h] = Σ_i g1[h,i] a1[i], c2[h] = Σ_j g2[h,j] a2[j]
    for (let i = 0; i < E; i++)
      for (let h = 0; h < H; h++) {
        addf(dg1t, h * E + i, rowDot(row(dc1, h, m), row(a1t, i, m), m));
        addf(dg2t, h * E + i, rowDot(row(dc2, h, m), row(a2t, i, m), m));
        const u = ld(g1t, h * E + i), v = ld(g2t, h * E + i);
        if (u != 0) rowAxpy(row(da1t, i, m), row(dc1, h, m), u, m);
        if (v != 0) rowAxpy(row(da2t, i, m), row(dc2, h, m), v, m);
      }
  }
}
