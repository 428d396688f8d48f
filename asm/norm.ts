// RMSNorm and BatchNorm (statistics, apply, backward, PyTorch running-stat update).
// Dimension legend: rows × d (RMSNorm); rows × cols (BatchNorm, one channel per column);
// outer × groups × inner for groupStats (PEER: T × dq × 1; Monet router: T × H × E).

import { addf, ld, st } from './common';

export function rmsnorm(y: usize, rstd: usize, x: usize, w: usize, rows: i32, d: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + (<usize>(r * d) << 2), yr = y + (<usize>(r * d) << 2);
    let j = 0;
    let s4 = f32x4.splat(0);
    for (; j + 4 <= d; j += 4) {
      const v = v128.load(xr + (<usize>j << 2));
      s4 = f32x4.add(s4, f32x4.mul(v, v));
    }
    let ss: f64 = <f64>f32x4.extract_lane(s4, 0) + <f64>f32x4.extract_lane(s4, 1) + <f64>f32x4.extract_lane(s4, 2) +
      <f64>f32x4.extract_lane(s4, 3);
    for (; j < d; j++) {
      const v = <f64>ld(xr, j);
      ss += v * v;
    }
    const rs = <f32>(1.0 / Math.sqrt(ss / d + <f64>eps));
    st(rstd, r, rs);
    const rs4 = f32x4.splat(rs);
    for (j = 0; j + 4 <= d; j += 4) {
      const o = <usize>j << 2;
      v128.store(yr + o, f32x4.mul(f32x4.mul(v128.load(xr + o), rs4), v128.load(w + o)));
    }
    for (; j < d; j++) st(yr, j, ld(xr, j) * rs * ld(w, j));
  }
}

/**
 * The dx half of rmsnormBackward (rows are independent; the loader splits them between threads):
 * dx += rstd·w·dy − x·rstd³·(Σ_j dy·w·x)/d.
 */
export function rmsnormBackwardRows(dx: usize, dy: usize, x: usize, w: usize, rstd: usize, rows: i32, d: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>(r * d) << 2;
    const xr = x + o, gr = dy + o, dr = dx + o;
    const rs = ld(rstd, r);
    let j = 0;
    let s4 = f32x4.splat(0);
    for (; j + 4 <= d; j += 4) {
      const q = <usize>j << 2;
      s4 = f32x4.add(s4, f32x4.mul(f32x4.mul(v128.load(gr + q), v128.load(w + q)), v128.load(xr + q)));
    }
    let dot: f64 = <f64>f32x4.extract_lane(s4, 0) + <f64>f32x4.extract_lane(s4, 1) + <f64>f32x4.extract_lane(s4, 2) +
      <f64>f32x4.extract_lane(s4, 3);
    for (; j < d; j++) dot += <f64>ld(gr, j) * <f64>ld(w, j) * <f64>ld(xr, j);
    const c = <f32>(<f64>rs * <f64>rs * <f64>rs * dot / d);
    const rs4 = f32x4.splat(rs), c4 = f32x4.splat(c);
    for (j = 0; j + 4 <= d; j += 4) {
      const q = <usize>j << 2;
      const g = f32x4.sub(f32x4.mul(f32x4.mul(rs4, v128.load(w + q)), v128.load(gr + q)),
        f32x4.mul(v128.load(xr + q), c4));
      v128.store(dr + q, f32x4.add(v128.load(dr + q), g));
    }
    for (; j < d; j++) addf(dr, j, rs * ld(w, j) * ld(gr, j) - ld(xr, j) * c);
  }
}

/**
 * The dw half of rmsnormBackward, for the columns c0 ≤ j < c1 (the loader splits the columns between threads):
 * dw[j] += Σ_r dy[r, j]·x[r, j]·rstd[r], rows added in order, so a column's sum does not depend on the split.
 */
export function rmsnormBackwardWeight(dw: usize, dy: usize, x: usize, rstd: usize, rows: i32, d: i32, c0: i32,
  c1: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = <usize>(r * d) << 2;
    const rs = ld(rstd, r), rs4 = f32x4.splat(rs);
    let j = c0;
    for (; j + 4 <= c1; j += 4) {
      const q = <usize>j << 2;
      const g = f32x4.mul(f32x4.mul(v128.load(dy + o + q), v128.load(x + o + q)), rs4);
      v128.store(dw + q, f32x4.add(v128.load(dw + q), g));
    }
    for (; j < c1; j++) addf(dw, j, ld(dy + o, j) * ld(x + o, j) * rs);
  }
}

/** Σ x[i] and Σ (x[i] − mu)² over i < n, in float64 (two float64x2 lanes and a scalar tail). */
// @ts-ignore: decorator
@inline function sumAndSquares(x: usize, n: i32, mu: f64, square: bool): f64 {
  let a = f64x2.splat(0), b = f64x2.splat(0);
  const m = f64x2.splat(mu);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    let lo = f64x2.promote_low_f32x4(v128.load64_zero(x + o));
    let hi = f64x2.promote_low_f32x4(v128.load64_zero(x + o + 8));
    if (square) {
      lo = f64x2.sub(lo, m);
      hi = f64x2.sub(hi, m);
      lo = f64x2.mul(lo, lo);
      hi = f64x2.mul(hi, hi);
    }
    a = f64x2.add(a, lo);
    b = f64x2.add(b, hi);
  }
  let s = f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1) + f64x2.extract_lane(b, 0) + f64x2.extract_lane(b, 1);
  for (; i < n; i++) {
    const d = <f64>ld(x, i) - (square ? mu : 0);
    s += square ? d * d : d;
  }
  return s;
}

/**
 * Mean and (biased) variance of each group g0 ≤ g < g1 over (outer, inner), in float64 (the loader splits the
 * groups between threads; each group's sums run in the same order whatever the split).
 */
export function groupStats(mean: usize, variance: usize, x: usize, outer: i32, groups: i32, inner: i32, g0: i32,
  g1: i32): void {
  const n = <f64>outer * <f64>inner;
  for (let g = g0; g < g1; g++) {
    let s: f64 = 0;
    for (let o = 0; o < outer; o++) s += sumAndSquares(x + (<usize>((o * groups + g) * inner) << 2), inner, 0, false);
    const mu = s / n;
    let ss: f64 = 0;
    for (let o = 0; o < outer; o++) ss += sumAndSquares(x + (<usize>((o * groups + g) * inner) << 2), inner, mu, true);
    st(mean, g, <f32>mu);
    st(variance, g, <f32>(ss / n));
  }
}

export function batchnorm(y: usize, x: usize, mean: usize, variance: usize, gamma: usize, beta: usize, rows: i32,
  cols: i32, eps: f32): void {
  for (let c = 0; c < cols; c++) {
    const rs = <f32>(1.0 / Math.sqrt(<f64>ld(variance, c) + <f64>eps));
    const mu = ld(mean, c), ga = ld(gamma, c), be = ld(beta, c);
    for (let r = 0; r < rows; r++) st(y, r * cols + c, (ld(x, r * cols + c) - mu) * rs * ga + be);
  }
}

export function batchnormBackward(dx: usize, dgamma: usize, dbeta: usize, dy: usize, x: usize, mean: usize,
  variance: usize, gamma: usize,
  rows: i32, cols: i32, eps: f32, train: bool): void {
  for (let c = 0; c < cols; c++) {
    const rs = 1.0 / Math.sqrt(<f64>ld(variance, c) + <f64>eps);
    const mu = <f64>ld(mean, c), ga = <f64>ld(gamma, c);
    let sdy: f64 = 0, sdyxh: f64 = 0;
    for (let r = 0; r < rows; r++) {
      const g = <f64>ld(dy, r * cols + c);
      sdy += g;
      sdyxh += g * (<f64>ld(x, r * cols + c) - mu) * rs;
    }
    addf(dgamma, c, <f32>sdyxh);
    addf(dbeta, c, <f32>sdy);
    for (let r = 0; r < rows; r++) {
      const o = r * cols + c;
      const g = <f64>ld(dy, o);
      const xh = (<f64>ld(x, o) - mu) * rs;
      addf(dx, o, <f32>(train ? ga * rs * (g - sdy / rows - xh * sdyxh / rows) : ga * rs * g));
    }
  }
}

export function runningStatsUpdate(runMean: usize, runVar: usize, mean: usize, variance: usize, groups: i32, count: i32,
  momentum: f64): void {
  for (let g = 0; g < groups; g++) {
    st(runMean, g, <f32>((1 - momentum) * <f64>ld(runMean, g) + momentum * <f64>ld(mean, g)));
    st(runVar, g, <f32>((1 - momentum) * <f64>ld(runVar, g) + momentum * <f64>ld(variance, g) * count / (count - 1)));
  }
}
