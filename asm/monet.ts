// Monet: router selection + softmax, aux losses, and the HD / VD expert-mixing contractions (docs/spec.md §1.3–1.10).
//
// Dimension legend: T tokens, H expert heads, E experts per side = √N, m expert dim (VD: m = moe_dim/2)
//
// The contractions run per token over (H, E) gates and (E, m) hidden units — O(H·E·m) per token, never anything
// E×E (the N composite experts are never formed). Rows of m floats are combined with SIMD (rowAxpy / rowDot).
// Zero gates are skipped in the forward sums: a router selects about moe_topk of E experts per head, so most g are 0.

import { addf, axpyf as rowAxpy, dotf as rowDot, exp4, ld, ldi, st, sti } from './common';

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
      const zo = z + (<usize>o << 2), mo = mask + (<usize>o << 2), go = g + (<usize>o << 2);
      const mu4 = f32x4.splat(mu), rs4 = f32x4.splat(rs);
      // the BN-normalised logits n_i = (z_i − μ)·rstd (the same float32 operations in lanes and in the tail)
      let i = 0;
      let n4 = f32x4.splat(-Infinity);
      for (; i + 4 <= E; i += 4) n4 = f32x4.max(n4, f32x4.mul(f32x4.sub(v128.load(zo + (<usize>i << 2)), mu4), rs4));
      let nmax: f32 = max(max(f32x4.extract_lane(n4, 0), f32x4.extract_lane(n4, 1)),
        max(f32x4.extract_lane(n4, 2), f32x4.extract_lane(n4, 3)));
      for (; i < E; i++) nmax = max(nmax, (ld(zo, i) - mu) * rs);
      const thr = min(nmax, sigma), thr4 = f32x4.splat(thr);
      // mask = n ≥ threshold; zmax = the largest selected raw logit
      let z4 = f32x4.splat(-Infinity);
      for (i = 0; i + 4 <= E; i += 4) {
        const zv = v128.load(zo + (<usize>i << 2));
        const sel = f32x4.ge(f32x4.mul(f32x4.sub(zv, mu4), rs4), thr4);
        v128.store(mo + (<usize>i << 2), v128.and(sel, i32x4.splat(1)));
        z4 = f32x4.max(z4, v128.bitselect(zv, f32x4.splat(-Infinity), sel));
      }
      let zmax: f32 = max(max(f32x4.extract_lane(z4, 0), f32x4.extract_lane(z4, 1)),
        max(f32x4.extract_lane(z4, 2), f32x4.extract_lane(z4, 3)));
      for (; i < E; i++) {
        const sel = (ld(zo, i) - mu) * rs >= thr;
        sti(mo, i, sel ? 1 : 0);
        if (sel) zmax = max(zmax, ld(zo, i));
      }
      // softmax of the selected raw logits: exp(z − zmax) where selected, 0 elsewhere
      const zm4 = f32x4.splat(zmax);
      let s4 = f32x4.splat(0);
      for (i = 0; i + 4 <= E; i += 4) {
        const o = <usize>i << 2;
        const e = v128.and(exp4(f32x4.sub(v128.load(zo + o), zm4)), i32x4.ne(v128.load(mo + o), i32x4.splat(0)));
        v128.store(go + o, e);
        s4 = f32x4.add(s4, e);
      }
      let s: f64 = <f64>f32x4.extract_lane(s4, 0) + <f64>f32x4.extract_lane(s4, 1) +
        <f64>f32x4.extract_lane(s4, 2) + <f64>f32x4.extract_lane(s4, 3);
      for (; i < E; i++) {
        const e = ldi(mo, i) ? <f32>Math.exp(<f64>(ld(zo, i) - zmax)) : 0;
        st(go, i, e);
        s += <f64>e;
      }
      const inv = <f32>(1.0 / s), inv4 = f32x4.splat(inv);
      for (i = 0; i + 4 <= E; i += 4) {
        const o = <usize>i << 2;
        v128.store(go + o, f32x4.mul(v128.load(go + o), inv4));
      }
      for (; i < E; i++) st(go, i, ld(go, i) * inv);
    }
  }
}

/** ḡ[h,i] = mean over t of g[t,h,i] into gbar (H·E floats, scratch). */
function batchMean(gbar: usize, g: usize, T: i32, HE: i32): void {
  memory.fill(gbar, 0, <usize>HE << 2);
  for (let t = 0; t < T; t++) rowAxpy(gbar, row(g, t, HE), 1, HE);
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
  for (let t = 0; t < T; t++) rowAxpy(row(dg, t, HE), scratch, 1, HE);
}

export function monetAmbLoss(loss: usize, g: usize, T: i32, H: i32, E: i32, scale: f64): void {
  let s: f64 = 0;
  for (let th = 0; th < T * H; th++) {
    const r = row(g, th, E);
    let i = 0;
    let m4 = f32x4.splat(-Infinity);
    for (; i + 4 <= E; i += 4) m4 = f32x4.max(m4, v128.load(r + (<usize>i << 2)));
    let mx: f32 = max(max(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)),
      max(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
    for (; i < E; i++) mx = max(mx, ld(r, i));
    s += 1 - <f64>mx;
  }
  addf(loss, 0, <f32>((scale * s) / (2.0 * H * T)));
}

/** For the tokens t0 ≤ t < t1 of T (the loader splits the tokens between threads; the constant uses all T). */
export function monetAmbBackward(dg: usize, g: usize, T: i32, H: i32, E: i32, scale: f64, t0: i32, t1: i32): void {
  const v = <f32>(-scale / (2.0 * H * T));
  for (let th = t0 * H; th < t1 * H; th++) {
    const r = row(g, th, E);
    // the first largest entry (ties → lower index)
    let best = 0;
    let bv = ld(r, 0);
    for (let i = 1; i < E; i++) {
      const x = ld(r, i);
      if (x > bv) {
        bv = x;
        best = i;
      }
    }
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

/**
 * The four dot products Σ_c a_r[c]·b_r[c] (c < m, m a multiple of 4), a_r = a + r·sa and b_r = b + r·sb (byte
 * strides; sb = 0: one b for all four), as the lanes of one vector — each the same float32 operations in the same
 * order as rowDot (lane sums accumulated over the row, then lane 0 + 1 + 2 + 3), with the four lane sums done at
 * once by a 4×4 transpose instead of four rounds of lane extraction.
 */
// @ts-ignore: decorator
@inline function rowDots4(a: usize, sa: usize, b: usize, sb: usize, m: i32): v128 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  for (let c = 0; c < m; c += 4) {
    const o = <usize>c << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + sa + o), v128.load(b + sb + o)));
    s2 = f32x4.add(s2, f32x4.mul(v128.load(a + 2 * sa + o), v128.load(b + 2 * sb + o)));
    s3 = f32x4.add(s3, f32x4.mul(v128.load(a + 3 * sa + o), v128.load(b + 3 * sb + o)));
  }
  const t0 = i32x4.shuffle(s0, s1, 0, 4, 1, 5), t1 = i32x4.shuffle(s0, s1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(s2, s3, 0, 4, 1, 5), t3 = i32x4.shuffle(s2, s3, 2, 6, 3, 7);
  const l0 = i64x2.shuffle(t0, t2, 0, 2), l1 = i64x2.shuffle(t0, t2, 1, 3);
  const l2 = i64x2.shuffle(t1, t3, 0, 2), l3 = i64x2.shuffle(t1, t3, 1, 3);
  return f32x4.add(f32x4.add(f32x4.add(l0, l1), l2), l3);
}

/** dst[0..4) += v. */
// @ts-ignore: decorator
@inline function add4(dst: usize, v: v128): void {
  v128.store(dst, f32x4.add(v128.load(dst), v));
}

/** scratch: H·m words (dcc of one token). */
export function monetHdMixBackward(da: usize, dg1: usize, dg2: usize, dy: usize, a: usize, g1: usize, g2: usize,
  cc: usize, T: i32, H: i32, E: i32, m: i32, scratch: usize): void {
  const dcc = scratch;
  for (let t = 0; t < T; t++) {
    const at = row(a, t, E * m), dat = row(da, t, E * m), dyt = row(dy, t, E * m), ct = row(cc, t, H * m);
    const g1t = row(g1, t, H * E), g2t = row(g2, t, H * E), dg1t = row(dg1, t, H * E), dg2t = row(dg2, t, H * E);
    memory.fill(dcc, 0, <usize>(H * m) << 2);
    // the dot products four experts at a time where m and E allow (rowDots4: the same operations, the same bits)
    const by4 = (m & 3) == 0 && (E & 3) == 0;
    const rs = <usize>m << 2;
    // y[j] = Σ_h g2[h,j] cc[h]:  dg2[h,j] += dy[j]·cc[h];  dcc[h] += g2[h,j]·dy[j]
    for (let h = 0; h < H; h++) {
      if (by4)
        for (let j = 0; j < E; j += 4) add4(row(dg2t, h * E + j, 1), rowDots4(row(dyt, j, m), rs, row(ct, h, m), 0, m));
      for (let j = 0; j < E; j++) {
        if (!by4) addf(dg2t, h * E + j, rowDot(row(dyt, j, m), row(ct, h, m), m));
        const gv = ld(g2t, h * E + j);
        if (gv != 0) rowAxpy(row(dcc, h, m), row(dyt, j, m), gv, m);
      }
    }
    // cc[h] = Σ_i g1[h,i] a[i]:  dg1[h,i] += dcc[h]·a[i];  da[i] += g1[h,i]·dcc[h]
    for (let h = 0; h < H; h++) {
      if (by4)
        for (let i = 0; i < E; i += 4) add4(row(dg1t, h * E + i, 1), rowDots4(row(at, i, m), rs, row(dcc, h, m), 0, m));
      for (let i = 0; i < E; i++) {
        if (!by4) addf(dg1t, h * E + i, rowDot(row(dcc, h, m), row(at, i, m), m));
        const gv = ld(g1t, h * E + i);
        if (gv != 0) rowAxpy(row(dat, i, m), row(dcc, h, m), gv, m);
      }
    }
  }
}

export function monetVdMix(h11: usize, h12: usize, h21: usize, h22: usize, c1: usize, c2: usize, a1: usize, a2: usize,
  g1: usize, g2: usize, G1: usize, G2: usize, T: i32, H: i32, E: i32, m: i32): void {
  if (m == 1) {
    monetVdMix1(h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, T, H, E);
    return;
  }
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
  dh21: usize, dh22: usize, a1: usize, a2: usize, g1: usize, g2: usize, G1: usize, G2: usize, c1: usize, c2: usize,
  T: i32, H: i32, E: i32, m: i32, scratch: usize): void {
  if (m == 1) {
    monetVdMixBackward1(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, T, H, E);
    return;
  }
  if ((m & 3) == 0 && (E & 3) == 0) {
    monetVdMixBackward4(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, T, H, E, m,
      scratch);
    return;
  }
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

/**
 * monetVdMixBackward for m and E multiples of 4: the same sums with the same float32 operations in the same order
 * (so the same bits), the dot products four experts at a time (rowDots4) and the gate gradients added as vectors
 * over experts; the row updates (da, dc) stay in the order of the general loop.
 */
function monetVdMixBackward4(da1: usize, da2: usize, dg1: usize, dg2: usize, dh11: usize, dh12: usize, dh21: usize,
  dh22: usize, a1: usize, a2: usize, g1: usize, g2: usize, G1: usize, G2: usize, c1: usize, c2: usize, T: i32, H: i32,
  E: i32, m: i32, scratch: usize): void {
  const Em = E * m, Hm = H * m, HE = H * E;
  const rs = <usize>m << 2; // bytes per row of m
  const dc1 = scratch, dc2 = scratch + (<usize>Hm << 2);
  for (let t = 0; t < T; t++) {
    const a1t = row(a1, t, Em), a2t = row(a2, t, Em), c1t = row(c1, t, Hm), c2t = row(c2, t, Hm);
    const da1t = row(da1, t, Em), da2t = row(da2, t, Em);
    const g1t = row(g1, t, HE), g2t = row(g2, t, HE), dg1t = row(dg1, t, HE), dg2t = row(dg2, t, HE);
    const d11 = row(dh11, t, Em), d12 = row(dh12, t, Em), d21 = row(dh21, t, Em), d22 = row(dh22, t, Em);
    memory.fill(dc1, 0, <usize>(2 * Hm) << 2);
    for (let i0 = 0; i0 < E; i0 += 4) {
      // dg[h, i] += dG[i] + s[h, i] for four experts i at once (dG: straight flows, s: cross flows)
      const dG1 = rowDots4(row(d11, i0, m), rs, row(a1t, i0, m), rs, m);
      const dG2 = rowDots4(row(d22, i0, m), rs, row(a2t, i0, m), rs, m);
      for (let h = 0; h < H; h++) {
        add4(row(dg1t, h * E + i0, 1), f32x4.add(dG1, rowDots4(row(d12, i0, m), rs, row(c2t, h, m), 0, m)));
        add4(row(dg2t, h * E + i0, 1), f32x4.add(dG2, rowDots4(row(d21, i0, m), rs, row(c1t, h, m), 0, m)));
      }
      for (let i = i0; i < i0 + 4; i++) {
        rowAxpy(row(da1t, i, m), row(d11, i, m), ld(G1, t * E + i), m);
        rowAxpy(row(da2t, i, m), row(d22, i, m), ld(G2, t * E + i), m);
        for (let h = 0; h < H; h++) {
          const u = ld(g1t, h * E + i), v = ld(g2t, h * E + i);
          if (u != 0) rowAxpy(row(dc2, h, m), row(d12, i, m), u, m);
          if (v != 0) rowAxpy(row(dc1, h, m), row(d21, i, m), v, m);
        }
      }
    }
    // c1[h] = Σ_i g1[h,i] a1[i], c2[h] = Σ_j g2[h,j] a2[j]
    for (let h = 0; h < H; h++)
      for (let i0 = 0; i0 < E; i0 += 4) {
        add4(row(dg1t, h * E + i0, 1), rowDots4(row(a1t, i0, m), rs, row(dc1, h, m), 0, m));
        add4(row(dg2t, h * E + i0, 1), rowDots4(row(a2t, i0, m), rs, row(dc2, h, m), 0, m));
      }
    for (let i = 0; i < E; i++)
      for (let h = 0; h < H; h++) {
        const u = ld(g1t, h * E + i), v = ld(g2t, h * E + i);
        if (u != 0) rowAxpy(row(da1t, i, m), row(dc1, h, m), u, m);
        if (v != 0) rowAxpy(row(da2t, i, m), row(dc2, h, m), v, m);
      }
  }
}

// With m = 1 (one hidden unit per expert half, e.g. the √N = 512 preset) every "row" above is one float, and the
// per-(i, h) row operations cost more than their arithmetic. The same sums, written with vectors over the experts i:

/** y[i] (=, or +=) x[i]·z[i] for i < n. */
// @ts-ignore: decorator
@inline function mulAdd(y: usize, x: usize, z: usize, n: i32, acc: bool): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = f32x4.mul(v128.load(x + o), v128.load(z + o));
    v128.store(y + o, acc ? f32x4.add(v128.load(y + o), v) : v);
  }
  for (; i < n; i++) st(y, i, acc ? ld(y, i) + ld(x, i) * ld(z, i) : ld(x, i) * ld(z, i));
}

function monetVdMix1(h11: usize, h12: usize, h21: usize, h22: usize, c1: usize, c2: usize, a1: usize, a2: usize,
  g1: usize, g2: usize, G1: usize, G2: usize, T: i32, H: i32, E: i32): void {
  for (let t = 0; t < T; t++) {
    const a1t = row(a1, t, E), a2t = row(a2, t, E), c1t = row(c1, t, H), c2t = row(c2, t, H);
    const h11t = row(h11, t, E), h12t = row(h12, t, E), h21t = row(h21, t, E), h22t = row(h22, t, E);
    // c1[h] = Σ_i g1[h,i] a1[i];  c2[h] = Σ_j g2[h,j] a2[j]
    for (let h = 0; h < H; h++) {
      st(c1t, h, rowDot(row(g1, t * H + h, E), a1t, E));
      st(c2t, h, rowDot(row(g2, t * H + h, E), a2t, E));
    }
    // h11 = G1·a1, h22 = G2·a2;  h12[i] = Σ_h g1[h,i] c2[h], h21[j] = Σ_h g2[h,j] c1[h]
    mulAdd(h11t, row(G1, t, E), a1t, E, false);
    mulAdd(h22t, row(G2, t, E), a2t, E, false);
    memory.fill(h12t, 0, <usize>E << 2);
    memory.fill(h21t, 0, <usize>E << 2);
    for (let h = 0; h < H; h++) {
      rowAxpy(h12t, row(g1, t * H + h, E), ld(c2t, h), E);
      rowAxpy(h21t, row(g2, t * H + h, E), ld(c1t, h), E);
    }
  }
}

function monetVdMixBackward1(da1: usize, da2: usize, dg1: usize, dg2: usize, dh11: usize, dh12: usize, dh21: usize,
  dh22: usize, a1: usize, a2: usize, g1: usize, g2: usize, G1: usize, G2: usize, c1: usize, c2: usize, T: i32, H: i32,
  E: i32): void {
  for (let t = 0; t < T; t++) {
    const a1t = row(a1, t, E), a2t = row(a2, t, E), c1t = row(c1, t, H), c2t = row(c2, t, H);
    const da1t = row(da1, t, E), da2t = row(da2, t, E);
    const d11 = row(dh11, t, E), d12 = row(dh12, t, E), d21 = row(dh21, t, E), d22 = row(dh22, t, E);
    // straight flows: da1 += G1·d11, da2 += G2·d22
    mulAdd(da1t, row(G1, t, E), d11, E, true);
    mulAdd(da2t, row(G2, t, E), d22, E, true);
    for (let h = 0; h < H; h++) {
      const g1h = row(g1, t * H + h, E), g2h = row(g2, t * H + h, E);
      const dg1h = row(dg1, t * H + h, E), dg2h = row(dg2, t * H + h, E);
      // dg1[h,i] += d11[i]·a1[i] + d12[i]·c2[h];  dg2[h,j] += d22[j]·a2[j] + d21[j]·c1[h]
      mulAdd(dg1h, d11, a1t, E, true);
      rowAxpy(dg1h, d12, ld(c2t, h), E);
      mulAdd(dg2h, d22, a2t, E, true);
      rowAxpy(dg2h, d21, ld(c1t, h), E);
      // cross flows through c: dc2[h] = Σ_i g1[h,i] d12[i], dc1[h] = Σ_j g2[h,j] d21[j]
      const dc2 = <f32>rowDot(g1h, d12, E), dc1 = <f32>rowDot(g2h, d21, E);
      // c1 = Σ_i g1 a1: dg1[h,i] += dc1·a1[i], da1[i] += g1[h,i]·dc1 (and the same for the second half)
      rowAxpy(dg1h, a1t, dc1, E);
      rowAxpy(dg2h, a2t, dc2, E);
      rowAxpy(da1t, g1h, dc1, E);
      rowAxpy(da2t, g2h, dc2, E);
    }
  }
}
