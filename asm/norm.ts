// RMSNorm and BatchNorm (statistics, apply, backward, PyTorch running-stat update).
// Dimension legend: rows × d (RMSNorm); rows × cols (BatchNorm, one channel per column);
// outer × groups × inner for groupStats (PEER: T × dq × 1; Monet router: T × H × E).

import { addf, ld, st } from './common';

export function rmsnorm(y: usize, rstd: usize, x: usize, w: usize, rows: i32, d: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let ss: f64 = 0;
    for (let j = 0; j < d; j++) {
      const v = <f64>ld(x, o + j);
      ss += v * v;
    }
    const rs = <f32>(1.0 / Math.sqrt(ss / d + <f64>eps));
    st(rstd, r, rs);
    for (let j = 0; j < d; j++) st(y, o + j, ld(x, o + j) * rs * ld(w, j));
  }
}

export function rmsnormBackward(dx: usize, dw: usize, dy: usize, x: usize, w: usize, rstd: usize, rows: i32, d: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    const rs = <f64>ld(rstd, r);
    let dot: f64 = 0;
    for (let j = 0; j < d; j++) dot += <f64>ld(dy, o + j) * <f64>ld(w, j) * <f64>ld(x, o + j);
    const c = rs * rs * rs * dot / d;
    for (let j = 0; j < d; j++) {
      const xj = <f64>ld(x, o + j), g = <f64>ld(dy, o + j);
      addf(dx, o + j, <f32>(rs * <f64>ld(w, j) * g - xj * c));
      addf(dw, j, <f32>(g * xj * rs));
    }
  }
}

export function groupStats(mean: usize, variance: usize, x: usize, outer: i32, groups: i32, inner: i32): void {
  const n = <f64>outer * <f64>inner;
  for (let g = 0; g < groups; g++) {
    let s: f64 = 0;
    for (let o = 0; o < outer; o++) {
      const b = (o * groups + g) * inner;
      for (let i = 0; i < inner; i++) s += <f64>ld(x, b + i);
    }
    const mu = s / n;
    let ss: f64 = 0;
    for (let o = 0; o < outer; o++) {
      const b = (o * groups + g) * inner;
      for (let i = 0; i < inner; i++) {
        const dv = <f64>ld(x, b + i) - mu;
        ss += dv * dv;
      }
    }
    st(mean, g, <f32>mu);
    st(variance, g, <f32>(ss / n));
  }
}

export function batchnorm(y: usize, x: usize, mean: usize, variance: usize, gamma: usize, beta: usize, rows: i32, cols: i32, eps: f32): void {
  for (let c = 0; c < cols; c++) {
    const rs = <f32>(1.0 / Math.sqrt(<f64>ld(variance, c) + <f64>eps));
    const mu = ld(mean, c), ga = ld(gamma, c), be = ld(beta, c);
    for (let r = 0; r < rows; r++) st(y, r * cols + c, (ld(x, r * cols + c) - mu) * rs * ga + be);
  }
}

export function batchnormBackward(dx: usize, dgamma: usize, dbeta: usize, dy: usize, x: usize, mean: usize, variance: usize, gamma: usize,
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

export function runningStatsUpdate(runMean: usize, runVar: usize, mean: usize, variance: usize, groups: i32, count: i32, momentum: f64): void {
  for (let g = 0; g < groups; g++) {
    st(runMean, g, <f32>((1 - momentum) * <f64>ld(runMean, g) + momentum * <f64>ld(mean, g)));
    st(runVar, g, <f32>((1 - momentum) * <f64>ld(runVar, g) + momentum * <f64>ld(variance, g) * count / (count - 1)));
  }
}
