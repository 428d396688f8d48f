// Plain-JavaScript kernels: the most direct reading of src/backend/kernels.ts, one loop nest per kernel.
//
// Storage is Float32Array/Int32Array like every other backend, but each kernel computes in float64 (JS numbers) and
// rounds once when it stores. That makes this backend (1) the executable definition of every kernel's semantics,
// (2) the oracle the WASM and WebGPU kernel tests compare with, and (3) a backend that runs every layer anywhere.
// It is not meant to be fast.

import { STEP, type ActKind, type DTensor, type F32, type I32, type Kernels } from '../kernels.ts';

/** A JS device tensor: the typed array itself. */
export interface JsTensor<D extends 'f32' | 'i32' = 'f32' | 'i32'> extends DTensor<D> {
  readonly data: D extends 'f32' ? Float32Array : Int32Array;
}

const f = (t: F32): Float32Array => (t as JsTensor<'f32'>).data;
const ix = (t: I32): Int32Array => (t as JsTensor<'i32'>).data;
const any = (t: DTensor): Float32Array | Int32Array => (t as JsTensor).data;

// ---------------------------------------------------------------- scalar helpers shared with the tests

/**
 * Elements from..from + n of a bfloat16 tensor packed two per int32 (element e in the low half of word e >> 1 when e
 * is even, the high half when odd) as float32: each one the float whose upper 16 bits it is (exact).
 */
export function widenedBf16(packed: Int32Array, n: number, from = 0): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const e = from + i;
    bits[i] = e & 1 ? packed[e >> 1] & 0xffff0000 : packed[e >> 1] << 16;
  }
  return out;
}

/**
 * erfc(x) with fractional error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit), enough for float32 and
 * accurate in both tails. The AssemblyScript kernels use the same formula.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327;
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}
export function act(kind: ActKind, x: number): number {
  switch (kind) {
    case 'relu':
      return Math.max(x, 0);
    case 'relu2':
      return x > 0 ? x * x : 0;
    case 'gelu':
      return 0.5 * x * erfc(-x * SQRT1_2);
    case 'silu':
      return x * sigmoid(x);
  }
}
export function actGrad(kind: ActKind, x: number): number {
  switch (kind) {
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'relu2':
      return x > 0 ? 2 * x : 0;
    case 'gelu':
      return 0.5 * erfc(-x * SQRT1_2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    case 'silu': {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
  }
}

/** Indices of the k largest of v[0..n), descending, ties → lower index (the project's one tie rule). */
export function topkIndices(v: ArrayLike<number>, off: number, n: number, k: number): number[] {
  const ids: number[] = [];
  for (let j = 0; j < n; j++) ids.push(j);
  ids.sort((a, b) => v[off + b] - v[off + a] || a - b);
  return ids.slice(0, k);
}

// ---------------------------------------------------------------- the kernels

export const jsKernels: Kernels = {
  fill(x, { n, value }) {
    any(x).fill(value, 0, n);
  },
  copyBlock(dst, src, { rows, cols, dstLd, srcLd, dstOffset, srcOffset, accumulate }) {
    const D = any(dst),
      Sr = any(src);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const o = dstOffset + r * dstLd + c;
        D[o] = (accumulate ? D[o] : 0) + Sr[srcOffset + r * srcLd + c];
      }
  },
  axpby(y, x, { n, alpha, beta }) {
    const Y = f(y),
      X = f(x);
    for (let i = 0; i < n; i++) Y[i] = beta === 0 ? alpha * X[i] : alpha * X[i] + beta * Y[i];
  },
  addBias(y, bias, { rows, cols }) {
    const Y = f(y),
      b = f(bias);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) Y[r * cols + c] += b[c];
  },
  colSum(out, x, { rows, cols }) {
    const O = f(out),
      X = f(x);
    for (let c = 0; c < cols; c++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += X[r * cols + c];
      O[c] += s;
    }
  },
  sumSquares(out, x, { n, accumulate }) {
    const X = f(x);
    let s = 0;
    for (let i = 0; i < n; i++) s += X[i] * X[i];
    f(out)[0] = (accumulate ? f(out)[0] : 0) + s;
  },

  matmul(c, a, b, { M, N, K, transA, transB, accumulate }) {
    const C = f(c),
      A = f(a),
      B = f(b);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let p = 0; p < K; p++)
          s += (transA ? A[p * M + i] : A[i * K + p]) * (transB ? B[j * K + p] : B[p * N + j]);
        C[i * N + j] = (accumulate ? C[i * N + j] : 0) + s;
      }
  },
  matmulGrouped(c, a, b, offsets, { N, K, G, transB, accumulate }) {
    const C = f(c),
      A = f(a),
      B = f(b),
      off = ix(offsets);
    for (let g = 0; g < G; g++) {
      const Bg = g * N * K;
      for (let r = off[g]; r < off[g + 1]; r++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let p = 0; p < K; p++) s += A[r * K + p] * (transB ? B[Bg + j * K + p] : B[Bg + p * N + j]);
          C[r * N + j] = (accumulate ? C[r * N + j] : 0) + s;
        }
    }
  },
  matmulBf16(c, a, b, { M, N, K, accumulate }) {
    const C = f(c),
      A = f(a),
      B = widenedBf16(ix(b), N * K);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let p = 0; p < K; p++) s += A[i * K + p] * B[j * K + p];
        C[i * N + j] = (accumulate ? C[i * N + j] : 0) + s;
      }
  },
  matmulGroupedTN(db, dc, a, offsets, { N, K, G }) {
    const dB = f(db),
      dC = f(dc),
      A = f(a),
      off = ix(offsets);
    for (let g = 0; g < G; g++)
      for (let j = 0; j < N; j++)
        for (let p = 0; p < K; p++) {
          let s = 0;
          for (let r = off[g]; r < off[g + 1]; r++) s += dC[r * N + j] * A[r * K + p];
          dB[(g * N + j) * K + p] += s;
        }
  },

  activation(y, x, { n, kind }) {
    const Y = f(y),
      X = f(x);
    for (let i = 0; i < n; i++) Y[i] = act(kind, X[i]);
  },
  activationBackward(dx, dy, x, { n, kind }) {
    const dX = f(dx),
      dY = f(dy),
      X = f(x);
    for (let i = 0; i < n; i++) dX[i] += dY[i] * actGrad(kind, X[i]);
  },
  swiglu(h, g, u, { n }) {
    const Hh = f(h),
      G = f(g),
      U = f(u);
    for (let i = 0; i < n; i++) Hh[i] = act('silu', G[i]) * U[i];
  },
  swigluBackward(dg, du, dh, g, u, { n }) {
    const dG = f(dg),
      dU = f(du),
      dH = f(dh),
      G = f(g),
      U = f(u);
    for (let i = 0; i < n; i++) {
      dG[i] += dH[i] * U[i] * actGrad('silu', G[i]);
      dU[i] += dH[i] * act('silu', G[i]);
    }
  },
  thresholdTopkMask(mask, x, { rows, n, k }) {
    const Mk = ix(mask),
      X = f(x);
    for (let r = 0; r < rows; r++) {
      const ids = topkIndices(X, r * n, n, k);
      const tau = X[r * n + ids[k - 1]];
      for (let j = 0; j < n; j++) Mk[r * n + j] = X[r * n + j] >= tau ? 1 : 0;
    }
  },
  maskScale(y, x, mask, { n, alpha }) {
    const Y = f(y),
      X = f(x),
      Mk = ix(mask);
    for (let i = 0; i < n; i++) Y[i] = X[i] * (alpha + (1 - alpha) * Mk[i]);
  },

  softmaxRows(y, x, { rows, n }) {
    const Y = f(y),
      X = f(x);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let mx = -Infinity;
      for (let j = 0; j < n; j++) mx = Math.max(mx, X[o + j]);
      let s = 0;
      const e = new Float64Array(n);
      for (let j = 0; j < n; j++) s += e[j] = Math.exp(X[o + j] - mx);
      for (let j = 0; j < n; j++) Y[o + j] = e[j] / s;
    }
  },
  softmaxBackward(dx, y, dy, { rows, n }) {
    const dX = f(dx),
      Y = f(y),
      dY = f(dy);
    for (let r = 0; r < rows; r++) {
      const o = r * n;
      let dot = 0;
      for (let j = 0; j < n; j++) dot += Y[o + j] * dY[o + j];
      for (let j = 0; j < n; j++) dX[o + j] += Y[o + j] * (dY[o + j] - dot);
    }
  },
  topkRows(idx, val, x, { rows, n, k }) {
    const I = ix(idx),
      Vv = f(val),
      X = f(x);
    for (let r = 0; r < rows; r++) {
      const ids = topkIndices(X, r * n, n, k);
      for (let s = 0; s < k; s++) {
        I[r * k + s] = ids[s];
        Vv[r * k + s] = X[r * n + ids[s]];
      }
    }
  },
  topkRowsBackward(dx, dval, idx, { rows, n, k }) {
    const dX = f(dx),
      dV = f(dval),
      I = ix(idx);
    for (let r = 0; r < rows; r++) for (let s = 0; s < k; s++) dX[r * n + I[r * k + s]] += dV[r * k + s];
  },

  rmsnorm(y, rstd, x, w, { rows, d, eps }) {
    const Y = f(y),
      R = f(rstd),
      X = f(x),
      W = f(w);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let j = 0; j < d; j++) ss += X[r * d + j] * X[r * d + j];
      const rs = 1 / Math.sqrt(ss / d + eps);
      R[r] = rs;
      for (let j = 0; j < d; j++) Y[r * d + j] = X[r * d + j] * rs * W[j];
    }
  },
  rmsnormBackward(dx, dw, dy, x, w, rstd, { rows, d }) {
    const dX = f(dx),
      dW = f(dw),
      dY = f(dy),
      X = f(x),
      W = f(w),
      R = f(rstd);
    for (let r = 0; r < rows; r++) {
      const rs = R[r];
      // y_j = x_j·rs·w_j with rs = (mean x² + eps)^(-1/2):  dx_j = rs·w_j·dy_j − x_j·rs³/d·Σ_i dy_i·w_i·x_i
      let dot = 0;
      for (let j = 0; j < d; j++) dot += dY[r * d + j] * W[j] * X[r * d + j];
      for (let j = 0; j < d; j++) {
        const o = r * d + j;
        dX[o] += rs * W[j] * dY[o] - (X[o] * rs * rs * rs * dot) / d;
        dW[j] += dY[o] * X[o] * rs;
      }
    }
  },
  groupStats(mean, variance, x, { outer, groups, inner }) {
    const Mu = f(mean),
      Va = f(variance),
      X = f(x);
    const n = outer * inner;
    for (let g = 0; g < groups; g++) {
      let s = 0;
      for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) s += X[(o * groups + g) * inner + i];
      const mu = s / n;
      let ss = 0;
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          const dv = X[(o * groups + g) * inner + i] - mu;
          ss += dv * dv;
        }
      Mu[g] = mu;
      Va[g] = ss / n;
    }
  },
  batchnorm(y, x, mean, variance, gamma, beta, { rows, cols, eps }) {
    const Y = f(y),
      X = f(x),
      Mu = f(mean),
      Va = f(variance),
      Ga = f(gamma),
      Be = f(beta);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const o = r * cols + c;
        Y[o] = ((X[o] - Mu[c]) / Math.sqrt(Va[c] + eps)) * Ga[c] + Be[c];
      }
  },
  batchnormBackward(dx, dgamma, dbeta, dy, x, mean, variance, gamma, { rows, cols, eps, train }) {
    const dX = f(dx),
      dGa = f(dgamma),
      dBe = f(dbeta),
      dY = f(dy),
      X = f(x),
      Mu = f(mean),
      Va = f(variance),
      Ga = f(gamma);
    for (let c = 0; c < cols; c++) {
      const rs = 1 / Math.sqrt(Va[c] + eps);
      let sdy = 0,
        sdyxh = 0;
      for (let r = 0; r < rows; r++) {
        const o = r * cols + c;
        const xh = (X[o] - Mu[c]) * rs;
        sdy += dY[o];
        sdyxh += dY[o] * xh;
      }
      dGa[c] += sdyxh;
      dBe[c] += sdy;
      for (let r = 0; r < rows; r++) {
        const o = r * cols + c;
        const xh = (X[o] - Mu[c]) * rs;
        dX[o] += train ? Ga[c] * rs * (dY[o] - sdy / rows - (xh * sdyxh) / rows) : Ga[c] * rs * dY[o];
      }
    }
  },
  runningStatsUpdate(runMean, runVar, mean, variance, { groups, count, momentum }) {
    const RM = f(runMean),
      RV = f(runVar),
      Mu = f(mean),
      Va = f(variance);
    for (let g = 0; g < groups; g++) {
      RM[g] = (1 - momentum) * RM[g] + momentum * Mu[g];
      RV[g] = (1 - momentum) * RV[g] + (momentum * Va[g] * count) / (count - 1);
    }
  },

  monetRoute(g, mask, z, mean, variance, { T, H, E, sigma, eps }) {
    const Gg = f(g),
      Mk = ix(mask),
      Z = f(z),
      Mu = f(mean),
      Va = f(variance);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const o = (t * H + h) * E;
        const rs = 1 / Math.sqrt(Va[h] + eps);
        let nmax = -Infinity;
        for (let i = 0; i < E; i++) nmax = Math.max(nmax, (Z[o + i] - Mu[h]) * rs);
        const thr = Math.min(nmax, sigma);
        let zmax = -Infinity;
        for (let i = 0; i < E; i++) {
          const sel = (Z[o + i] - Mu[h]) * rs >= thr;
          Mk[o + i] = sel ? 1 : 0;
          if (sel) zmax = Math.max(zmax, Z[o + i]);
        }
        let s = 0;
        const e = new Float64Array(E);
        for (let i = 0; i < E; i++) s += e[i] = Mk[o + i] ? Math.exp(Z[o + i] - zmax) : 0;
        for (let i = 0; i < E; i++) Gg[o + i] = e[i] / s;
      }
  },
  monetUnifLoss(loss, g, { T, H, E, eps, scale }) {
    const Gg = f(g);
    let s = 0;
    for (let hi = 0; hi < H * E; hi++) {
      let m = 0;
      for (let t = 0; t < T; t++) m += Gg[t * H * E + hi];
      s += Math.log(m / T + eps);
    }
    f(loss)[0] += scale * (-s / (2 * H * E));
  },
  monetUnifBackward(dg, g, { T, H, E, eps, scale }) {
    const dG = f(dg),
      Gg = f(g);
    for (let hi = 0; hi < H * E; hi++) {
      let m = 0;
      for (let t = 0; t < T; t++) m += Gg[t * H * E + hi];
      const v = (scale * (-1 / (2 * H * E))) / (T * (m / T + eps));
      for (let t = 0; t < T; t++) dG[t * H * E + hi] += v;
    }
  },
  monetAmbLoss(loss, g, { T, H, E, scale }) {
    const Gg = f(g);
    let s = 0;
    for (let th = 0; th < T * H; th++) {
      let mx = -Infinity;
      for (let i = 0; i < E; i++) mx = Math.max(mx, Gg[th * E + i]);
      s += 1 - mx;
    }
    f(loss)[0] += (scale * s) / (2 * H * T);
  },
  monetAmbBackward(dg, g, { T, H, E, scale }) {
    const dG = f(dg),
      Gg = f(g);
    for (let th = 0; th < T * H; th++) {
      let best = 0;
      for (let i = 1; i < E; i++) if (Gg[th * E + i] > Gg[th * E + best]) best = i;
      dG[th * E + best] += (scale * -1) / (2 * H * T);
    }
  },
  headSum(G, g, { T, H, E }) {
    const GG = f(G),
      Gg = f(g);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < E; i++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += Gg[(t * H + h) * E + i];
        GG[t * E + i] = s;
      }
  },
  headBroadcastAdd(dg, dG, { T, H, E }) {
    const dGg = f(dg),
      dGG = f(dG);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) for (let i = 0; i < E; i++) dGg[(t * H + h) * E + i] += dGG[t * E + i];
  },
  monetHdMix(y, cc, a, g1, g2, { T, H, E, m }) {
    const Y = f(y),
      CC = f(cc),
      A = f(a),
      G1 = f(g1),
      G2 = f(g2);
    for (let t = 0; t < T; t++) {
      const ga = t * H * E,
        aa = t * E * m,
        ca = t * H * m;
      for (let h = 0; h < H; h++)
        for (let c = 0; c < m; c++) {
          let s = 0;
          for (let i = 0; i < E; i++) s += G1[ga + h * E + i] * A[aa + i * m + c];
          CC[ca + h * m + c] = s;
        }
      for (let j = 0; j < E; j++)
        for (let c = 0; c < m; c++) {
          let s = 0;
          for (let h = 0; h < H; h++) s += G2[ga + h * E + j] * CC[ca + h * m + c];
          Y[aa + j * m + c] = s;
        }
    }
  },
  monetHdMixBackward(da, dg1, dg2, dy, a, g1, g2, cc, { T, H, E, m }) {
    const dA = f(da),
      dG1 = f(dg1),
      dG2 = f(dg2),
      dY = f(dy),
      A = f(a),
      G1 = f(g1),
      G2 = f(g2),
      CC = f(cc);
    const dcc = new Float64Array(H * m);
    for (let t = 0; t < T; t++) {
      const ga = t * H * E,
        aa = t * E * m,
        ca = t * H * m;
      dcc.fill(0);
      for (let h = 0; h < H; h++)
        for (let j = 0; j < E; j++) {
          let s = 0;
          for (let c = 0; c < m; c++) {
            s += dY[aa + j * m + c] * CC[ca + h * m + c];
            dcc[h * m + c] += G2[ga + h * E + j] * dY[aa + j * m + c];
          }
          dG2[ga + h * E + j] += s;
        }
      for (let i = 0; i < E; i++) {
        for (let c = 0; c < m; c++) {
          let s = 0;
          for (let h = 0; h < H; h++) s += G1[ga + h * E + i] * dcc[h * m + c];
          dA[aa + i * m + c] += s;
        }
        for (let h = 0; h < H; h++) {
          let s = 0;
          for (let c = 0; c < m; c++) s += dcc[h * m + c] * A[aa + i * m + c];
          dG1[ga + h * E + i] += s;
        }
      }
    }
  },
  monetVdMix(h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, { T, H, E, m }) {
    const H11 = f(h11),
      H12 = f(h12),
      H21 = f(h21),
      H22 = f(h22),
      C1 = f(c1),
      C2 = f(c2);
    const A1 = f(a1),
      A2 = f(a2),
      Q1 = f(g1),
      Q2 = f(g2),
      S1 = f(G1),
      S2 = f(G2);
    for (let t = 0; t < T; t++) {
      const ga = t * H * E,
        aa = t * E * m,
        ca = t * H * m,
        sa = t * E;
      for (let h = 0; h < H; h++)
        for (let c = 0; c < m; c++) {
          let s1 = 0,
            s2 = 0;
          for (let i = 0; i < E; i++) {
            s1 += Q1[ga + h * E + i] * A1[aa + i * m + c];
            s2 += Q2[ga + h * E + i] * A2[aa + i * m + c];
          }
          C1[ca + h * m + c] = s1;
          C2[ca + h * m + c] = s2;
        }
      for (let i = 0; i < E; i++)
        for (let c = 0; c < m; c++) {
          let s12 = 0,
            s21 = 0;
          for (let h = 0; h < H; h++) {
            s12 += Q1[ga + h * E + i] * C2[ca + h * m + c];
            s21 += Q2[ga + h * E + i] * C1[ca + h * m + c];
          }
          H11[aa + i * m + c] = S1[sa + i] * A1[aa + i * m + c];
          H12[aa + i * m + c] = s12;
          H21[aa + i * m + c] = s21;
          H22[aa + i * m + c] = S2[sa + i] * A2[aa + i * m + c];
        }
    }
  },
  monetVdMixBackward(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, { T, H, E, m }) {
    const dA1 = f(da1),
      dA2 = f(da2),
      dQ1 = f(dg1),
      dQ2 = f(dg2);
    const dH11 = f(dh11),
      dH12 = f(dh12),
      dH21 = f(dh21),
      dH22 = f(dh22);
    const A1 = f(a1),
      A2 = f(a2),
      Q1 = f(g1),
      Q2 = f(g2),
      S1 = f(G1),
      S2 = f(G2),
      C1 = f(c1),
      C2 = f(c2);
    const dc1 = new Float64Array(H * m),
      dc2 = new Float64Array(H * m);
    for (let t = 0; t < T; t++) {
      const ga = t * H * E,
        aa = t * E * m,
        ca = t * H * m,
        sa = t * E;
      dc1.fill(0);
      dc2.fill(0);
      for (let i = 0; i < E; i++) {
        // straight flows h11 = G1·a1, h22 = G2·a2: dG lands on every head
        let dG1 = 0,
          dG2 = 0;
        for (let c = 0; c < m; c++) {
          dG1 += dH11[aa + i * m + c] * A1[aa + i * m + c];
          dG2 += dH22[aa + i * m + c] * A2[aa + i * m + c];
          dA1[aa + i * m + c] += S1[sa + i] * dH11[aa + i * m + c];
          dA2[aa + i * m + c] += S2[sa + i] * dH22[aa + i * m + c];
        }
        // cross flows h12[i] = Σ_h g1[h,i]·c2[h],  h21[j] = Σ_h g2[h,j]·c1[h]
        for (let h = 0; h < H; h++) {
          let s12 = 0,
            s21 = 0;
          for (let c = 0; c < m; c++) {
            s12 += dH12[aa + i * m + c] * C2[ca + h * m + c];
            s21 += dH21[aa + i * m + c] * C1[ca + h * m + c];
            dc2[h * m + c] += Q1[ga + h * E + i] * dH12[aa + i * m + c];
            dc1[h * m + c] += Q2[ga + h * E + i] * dH21[aa + i * m + c];
          }
          dQ1[ga + h * E + i] += dG1 + s12;
          dQ2[ga + h * E + i] += dG2 + s21;
        }
      }
      // c1[h] = Σ_i g1[h,i]·a1[i],  c2[h] = Σ_j g2[h,j]·a2[j]
      for (let i = 0; i < E; i++)
        for (let h = 0; h < H; h++) {
          let s1 = 0,
            s2 = 0;
          for (let c = 0; c < m; c++) {
            s1 += dc1[h * m + c] * A1[aa + i * m + c];
            s2 += dc2[h * m + c] * A2[aa + i * m + c];
            dA1[aa + i * m + c] += Q1[ga + h * E + i] * dc1[h * m + c];
            dA2[aa + i * m + c] += Q2[ga + h * E + i] * dc2[h * m + c];
          }
          dQ1[ga + h * E + i] += s1;
          dQ2[ga + h * E + i] += s2;
        }
    }
  },

  peerRoute(ids, scores, q, subKeys, { T, H, dk, n, k }) {
    const I = ix(ids),
      Sc = f(scores),
      Q = f(q),
      K = f(subKeys);
    const half = dk / 2;
    const s1 = new Float64Array(n),
      s2 = new Float64Array(n);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const qo = t * H * dk + h * dk;
        for (let a = 0; a < n; a++) {
          let x1 = 0,
            x2 = 0;
          for (let c = 0; c < half; c++) {
            x1 += Q[qo + c] * K[a * half + c];
            x2 += Q[qo + half + c] * K[(n + a) * half + c];
          }
          s1[a] = x1;
          s2[a] = x2;
        }
        const A = topkIndices(s1, 0, n, k),
          Bk = topkIndices(s2, 0, n, k);
        const cand: { id: number; sc: number }[] = [];
        for (const a of A) for (const b of Bk) cand.push({ id: a * n + b, sc: s1[a] + s2[b] });
        cand.sort((u, v) => v.sc - u.sc || u.id - v.id);
        for (let r = 0; r < k; r++) {
          I[(t * H + h) * k + r] = cand[r].id;
          Sc[(t * H + h) * k + r] = cand[r].sc;
        }
      }
  },
  peerRouteBackward(dq, dSubKeys, dscores, q, subKeys, ids, { T, H, dk, n, k }) {
    const dQ = f(dq),
      dK = f(dSubKeys),
      dS = f(dscores),
      Q = f(q),
      K = f(subKeys),
      I = ix(ids);
    const half = dk / 2;
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const qo = t * H * dk + h * dk;
        for (let r = 0; r < k; r++) {
          const o = (t * H + h) * k + r;
          const a = Math.floor(I[o] / n),
            b = I[o] % n,
            ds = dS[o];
          for (let c = 0; c < half; c++) {
            dQ[qo + c] += ds * K[a * half + c];
            dQ[qo + half + c] += ds * K[(n + b) * half + c];
            dK[a * half + c] += ds * Q[qo + c];
            dK[(n + b) * half + c] += ds * Q[qo + half + c];
          }
        }
      }
  },
  peerExperts(y, hpre, x, wDown, wUp, ids, w, { T, H, k, d, kind }) {
    const Y = f(y),
      Hp = f(hpre),
      X = f(x),
      U = f(wDown),
      Vv = f(wUp),
      I = ix(ids),
      W = f(w);
    for (let t = 0; t < T; t++)
      for (let hr = 0; hr < H * k; hr++) {
        const o = t * H * k + hr,
          id = I[o];
        let s = 0;
        for (let c = 0; c < d; c++) s += U[id * d + c] * X[t * d + c];
        Hp[o] = s;
        const coef = W[o] * act(kind, s);
        for (let c = 0; c < d; c++) Y[t * d + c] += coef * Vv[id * d + c];
      }
  },
  peerExpertsBackward(dx, dwDown, dwUp, dw, dy, x, wDown, wUp, ids, w, hpre, { T, H, k, d, kind }) {
    const dX = f(dx),
      dU = f(dwDown),
      dV = f(dwUp),
      dW = f(dw),
      dY = f(dy),
      X = f(x),
      U = f(wDown),
      Vv = f(wUp);
    const I = ix(ids),
      W = f(w),
      Hp = f(hpre);
    for (let t = 0; t < T; t++)
      for (let hr = 0; hr < H * k; hr++) {
        const o = t * H * k + hr,
          id = I[o];
        const fa = act(kind, Hp[o]);
        let dov = 0;
        for (let c = 0; c < d; c++) {
          dov += dY[t * d + c] * Vv[id * d + c];
          dV[id * d + c] += W[o] * fa * dY[t * d + c];
        }
        dW[o] += dov * fa;
        const dh = dov * W[o] * actGrad(kind, Hp[o]);
        for (let c = 0; c < d; c++) {
          dU[id * d + c] += dh * X[t * d + c];
          dX[t * d + c] += dh * U[id * d + c];
        }
      }
  },

  moeSort(order, pos, offsets, expertIdx, { P, E }) {
    const Or = ix(order),
      Po = ix(pos),
      Of = ix(offsets),
      Ei = ix(expertIdx);
    const count = new Int32Array(E);
    for (let p = 0; p < P; p++) count[Ei[p]]++;
    Of[0] = 0;
    for (let e = 0; e < E; e++) Of[e + 1] = Of[e] + count[e];
    const next = Int32Array.from(Of.subarray(0, E));
    for (let p = 0; p < P; p++) {
      const r = next[Ei[p]]++;
      Or[r] = p;
      Po[p] = r;
    }
  },
  moeDispatch(xs, x, order, { P, k, d }) {
    const XS = f(xs),
      X = f(x),
      Or = ix(order);
    for (let r = 0; r < P; r++) {
      const t = Math.floor(Or[r] / k);
      for (let c = 0; c < d; c++) XS[r * d + c] = X[t * d + c];
    }
  },
  moeDispatchBackward(dx, dxs, pos, { T, k, d }) {
    const dX = f(dx),
      dXS = f(dxs),
      Po = ix(pos);
    for (let t = 0; t < T; t++)
      for (let s = 0; s < k; s++) {
        const r = Po[t * k + s];
        for (let c = 0; c < d; c++) dX[t * d + c] += dXS[r * d + c];
      }
  },
  moeCombine(y, ys, w, pos, { T, k, d }) {
    const Y = f(y),
      YS = f(ys),
      W = f(w),
      Po = ix(pos);
    for (let t = 0; t < T; t++)
      for (let s = 0; s < k; s++) {
        const r = Po[t * k + s],
          ws = W[t * k + s];
        for (let c = 0; c < d; c++) Y[t * d + c] += ws * YS[r * d + c];
      }
  },
  moeCombineBackward(dys, dw, dy, ys, w, pos, { T, k, d }) {
    const dYS = f(dys),
      dW = f(dw),
      dY = f(dy),
      YS = f(ys),
      W = f(w),
      Po = ix(pos);
    for (let t = 0; t < T; t++)
      for (let s = 0; s < k; s++) {
        const p = t * k + s,
          r = Po[p];
        let dot = 0;
        for (let c = 0; c < d; c++) {
          dYS[r * d + c] += W[p] * dY[t * d + c];
          dot += dY[t * d + c] * YS[r * d + c];
        }
        dW[p] += dot;
      }
  },
  smoeAux(lossBalance, lossZ, probs, lse, z, expertIdx, { T, E, k, scale }) {
    const Pr = f(probs),
      L = f(lse),
      Z = f(z),
      Ei = ix(expertIdx);
    const Pm = new Float64Array(E),
      cnt = new Float64Array(E);
    let zl = 0;
    for (let t = 0; t < T; t++) {
      let mx = -Infinity;
      for (let j = 0; j < E; j++) mx = Math.max(mx, Z[t * E + j]);
      let s = 0;
      for (let j = 0; j < E; j++) s += Math.exp(Z[t * E + j] - mx);
      const l = mx + Math.log(s);
      L[t] = l;
      zl += l * l;
      for (let j = 0; j < E; j++) {
        const p = Math.exp(Z[t * E + j] - l);
        Pr[t * E + j] = p;
        Pm[j] += p / T;
      }
    }
    for (let p = 0; p < T * k; p++) cnt[Ei[p]] += 1 / (T * k);
    let bal = 0;
    for (let j = 0; j < E; j++) bal += cnt[j] * Pm[j];
    f(lossBalance)[0] += scale * E * bal;
    f(lossZ)[0] += (scale * zl) / T;
  },
  smoeAuxBackward(dz, probs, lse, expertIdx, { T, E, k, coefBalance, coefZ }) {
    const dZ = f(dz),
      Pr = f(probs),
      L = f(lse),
      Ei = ix(expertIdx);
    const fr = new Float64Array(E);
    for (let p = 0; p < T * k; p++) fr[Ei[p]] += 1 / (T * k);
    for (let t = 0; t < T; t++) {
      let fp = 0;
      for (let j = 0; j < E; j++) fp += fr[j] * Pr[t * E + j];
      for (let j = 0; j < E; j++) {
        const p = Pr[t * E + j];
        dZ[t * E + j] += coefBalance * (E / T) * p * (fr[j] - fp) + coefZ * (2 / T) * L[t] * p;
      }
    }
  },

  widenBf16(dst, packed, { n }) {
    f(dst).set(widenedBf16(ix(packed), n));
  },
  gatherRowsBf16(dst, table, idx, { rows, cols }) {
    const D = f(dst),
      P = ix(table),
      I = ix(idx);
    for (let r = 0; r < rows; r++) D.set(widenedBf16(P, cols, I[r] * cols), r * cols);
  },
  gatherRows(dst, table, idx, { rows, cols }) {
    const D = f(dst),
      Tb = f(table),
      I = ix(idx);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) D[r * cols + c] = Tb[I[r] * cols + c];
  },
  scatterAddRows(dst, src, idx, { rows, cols }) {
    const D = f(dst),
      Sr = f(src),
      I = ix(idx);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) D[I[r] * cols + c] += Sr[r * cols + c];
  },
  rope(y, x, { B, S, heads, hd, theta }) {
    const Y = f(y),
      X = f(x),
      half = hd / 2;
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++)
        for (let h = 0; h < heads; h++) {
          const o = ((b * S + s) * heads + h) * hd;
          for (let i = 0; i < half; i++) {
            const ang = s * Math.pow(theta, (-2 * i) / hd),
              cs = Math.cos(ang),
              sn = Math.sin(ang);
            const x1 = X[o + i],
              x2 = X[o + half + i];
            Y[o + i] = x1 * cs - x2 * sn;
            Y[o + half + i] = x2 * cs + x1 * sn;
          }
        }
  },
  ropeBackward(dx, dy, { B, S, heads, hd, theta }) {
    const dX = f(dx),
      dY = f(dy),
      half = hd / 2;
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++)
        for (let h = 0; h < heads; h++) {
          const o = ((b * S + s) * heads + h) * hd;
          for (let i = 0; i < half; i++) {
            const ang = s * Math.pow(theta, (-2 * i) / hd),
              cs = Math.cos(ang),
              sn = Math.sin(ang);
            const g1 = dY[o + i],
              g2 = dY[o + half + i];
            dX[o + i] += g1 * cs + g2 * sn;
            dX[o + half + i] += g2 * cs - g1 * sn;
          }
        }
  },
  attention(out, probs, q, k, v, { B, S, nH, nKV, hd }) {
    const O = f(out),
      P = f(probs),
      Q = f(q),
      K = f(k),
      Vv = f(v);
    const group = nH / nKV,
      scale = 1 / Math.sqrt(hd);
    const sc = new Float64Array(S);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < nH; h++) {
        const kh = Math.floor(h / group);
        for (let i = 0; i < S; i++) {
          const qo = ((b * S + i) * nH + h) * hd;
          let mx = -Infinity;
          for (let j = 0; j <= i; j++) {
            const ko = ((b * S + j) * nKV + kh) * hd;
            let dot = 0;
            for (let c = 0; c < hd; c++) dot += Q[qo + c] * K[ko + c];
            sc[j] = dot * scale;
            mx = Math.max(mx, sc[j]);
          }
          let s = 0;
          for (let j = 0; j <= i; j++) s += sc[j] = Math.exp(sc[j] - mx);
          const po = ((b * nH + h) * S + i) * S;
          for (let j = 0; j < S; j++) P[po + j] = j <= i ? sc[j] / s : 0;
          for (let c = 0; c < hd; c++) {
            let acc = 0;
            for (let j = 0; j <= i; j++) acc += (sc[j] / s) * Vv[((b * S + j) * nKV + kh) * hd + c];
            O[qo + c] = acc;
          }
        }
      }
  },
  attentionBackward(dq, dk, dv, dout, q, k, v, probs, { B, S, nH, nKV, hd }) {
    const dQ = f(dq),
      dK = f(dk),
      dV = f(dv),
      dO = f(dout),
      Q = f(q),
      K = f(k),
      Vv = f(v),
      P = f(probs);
    const group = nH / nKV,
      scale = 1 / Math.sqrt(hd);
    const dp = new Float64Array(S);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < nH; h++) {
        const kh = Math.floor(h / group);
        for (let i = 0; i < S; i++) {
          const qo = ((b * S + i) * nH + h) * hd,
            po = ((b * nH + h) * S + i) * S;
          let dot = 0;
          for (let j = 0; j <= i; j++) {
            const vo = ((b * S + j) * nKV + kh) * hd;
            let s = 0;
            for (let c = 0; c < hd; c++) {
              s += dO[qo + c] * Vv[vo + c];
              dV[vo + c] += P[po + j] * dO[qo + c];
            }
            dp[j] = s;
            dot += P[po + j] * s;
          }
          for (let j = 0; j <= i; j++) {
            const ds = P[po + j] * (dp[j] - dot) * scale;
            const ko = ((b * S + j) * nKV + kh) * hd;
            for (let c = 0; c < hd; c++) {
              dQ[qo + c] += ds * K[ko + c];
              dK[ko + c] += ds * Q[qo + c];
            }
          }
        }
      }
  },
  crossEntropy(loss, probs, logits, tokens, { B, S, V, scale }) {
    const Pr = f(probs),
      Lg = f(logits),
      Tk = ix(tokens);
    let total = 0;
    for (let r = 0; r < B * S; r++) {
      let mx = -Infinity;
      for (let j = 0; j < V; j++) mx = Math.max(mx, Lg[r * V + j]);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(Lg[r * V + j] - mx);
      const lse = mx + Math.log(s);
      for (let j = 0; j < V; j++) Pr[r * V + j] = Math.exp(Lg[r * V + j] - lse);
      if (r % S < S - 1) total += lse - Lg[r * V + Tk[r + 1]];
    }
    f(loss)[0] += scale * total;
  },
  crossEntropyBackward(dlogits, probs, tokens, { B, S, V, scale }) {
    const dL = f(dlogits),
      Pr = f(probs),
      Tk = ix(tokens);
    for (let r = 0; r < B * S; r++) {
      if (r % S === S - 1) continue;
      const tgt = Tk[r + 1];
      for (let j = 0; j < V; j++) dL[r * V + j] += scale * (Pr[r * V + j] - (j === tgt ? 1 : 0));
    }
  },

  stepGuard(ctl, { accum, clip, step }) {
    const C = f(ctl);
    const loss = C[STEP.loss] / accum;
    const norm = Math.sqrt(C[STEP.normSq]) / accum;
    if (Number.isFinite(loss) && Number.isFinite(norm)) {
      C[STEP.scale] = clip > 0 ? Math.min(1, clip / (norm + 1e-6)) : 1;
      C[STEP.skip] = 0;
      C[STEP.streak] = 0;
      return;
    }
    C[STEP.scale] = 0;
    C[STEP.skip] = 1;
    C[STEP.faults] += 1;
    C[STEP.streak] += 1;
    if (C[STEP.streak] === 1) C[STEP.streakFrom] = step;
    C[STEP.lastStep] = step;
    C[STEP.lastLoss] = loss;
    C[STEP.lastNorm] = norm;
  },
  copyIf(dst, src, cond, { n, at }) {
    if (f(cond)[at] === 0) return;
    f(dst).set(f(src).subarray(0, n));
  },
  adamw(p, g, m, v, ctl, { n, lr, beta1, beta2, eps, weightDecay, step, gradScale }) {
    const Pp = f(p),
      G = f(g),
      Mm = f(m),
      Vv = f(v),
      C = f(ctl);
    if (C[STEP.skip] !== 0) return; // a skipped step (stepGuard): parameters and moments stay as they are
    const scale = gradScale * C[STEP.scale];
    const bc1 = 1 - Math.pow(beta1, step),
      bc2 = 1 - Math.pow(beta2, step);
    for (let i = 0; i < n; i++) {
      const gi = G[i] * scale;
      Pp[i] -= lr * weightDecay * Pp[i];
      Mm[i] = beta1 * Mm[i] + (1 - beta1) * gi;
      Vv[i] = beta2 * Vv[i] + (1 - beta2) * gi * gi;
      Pp[i] -= (lr * (Mm[i] / bc1)) / (Math.sqrt(Vv[i] / bc2) + eps);
    }
  },
};
