// BatchNorm1d, float64, forward and backward, with PyTorch semantics (docs/spec.md §1.3, §2.2, §5).
//
// Dimension legend (one general layout serves both users):
//   O  outer count   (tokens T)
//   C  channels      (PEER: d_q = H·key_dim features; Monet router: H heads)
//   I  inner count   (PEER: 1;                        Monet router: E = √N experts)
// Input x is (O, C, I) row-major; channel c is normalised over all O·I entries x[o, c, i].
//
//   PEER query BN:   nn.BatchNorm1d(H·key_dim) on (T, H·key_dim)          → O = T, C = H·key_dim, I = 1, affine
//   Monet router BN: nn.BatchNorm1d(H, affine=False) on (T·E, H), i.e. the logits (T, H, E) transposed so that every
//                    head is one channel normalised over tokens AND experts → O = T, C = H, I = E, no affine
//
// Modes:
//   train: mean_c and the BIASED variance var_c over the n = O·I entries normalise the batch; the running stats
//          (if given) are updated as running ← (1 − momentum)·running + momentum·batch, with the UNBIASED
//          variance var_c·n/(n − 1) going into running_var (PyTorch's convention).
//   eval:  running_mean / running_var normalise; nothing is updated.
// y = (x − mean_c) / sqrt(var_c + eps) · weight_c + bias_c   (weight/bias only when affine)

export type BatchNormMode = 'train' | 'eval';

/** What forward saves for backward: per-channel mean and reciprocal standard deviation, and the normalised x. */
export interface BatchNormSaved {
  mean: Float64Array; // (C) the mean actually used (batch mean in train mode, running mean in eval mode)
  rstd: Float64Array; // (C) 1 / sqrt(var + eps) actually used
  xhat: Float64Array; // (O, C, I) normalised input, before the affine transform
  mode: BatchNormMode;
}

export interface BatchNormDims {
  O: number;
  C: number;
  I: number;
}

export interface BatchNormOptions {
  mode: BatchNormMode;
  eps: number;
  momentum: number;
}

/**
 * Forward. `runningMean`/`runningVar` (C) are read in eval mode. In train mode, when `nextMean`/`nextVar` (C) are
 * given, they receive the updated running statistics (the inputs are never modified).
 */
export function batchnormForward(
  out: Float64Array, // (O, C, I)
  x: Float64Array, // (O, C, I)
  weight: Float64Array | null, // (C) gamma, or null without affine
  bias: Float64Array | null, // (C) beta, or null without affine
  runningMean: Float64Array, // (C)
  runningVar: Float64Array, // (C)
  nextMean: Float64Array | null, // (C) output: updated running mean (train mode)
  nextVar: Float64Array | null, // (C) output: updated running var (train mode)
  dims: BatchNormDims,
  opts: BatchNormOptions,
): BatchNormSaved {
  const { O, C, I } = dims;
  const n = O * I;
  const mean = new Float64Array(C); // (C)
  const rstd = new Float64Array(C); // (C)
  const xhat = new Float64Array(O * C * I); // (O, C, I)
  for (let c = 0; c < C; c++) {
    let mu: number;
    let varUsed: number;
    if (opts.mode === 'train') {
      if (n < 2) {
        // PyTorch: "Expected more than 1 value per channel when training". The variance of one value is 0 and the
        // unbiased running variance would divide by zero.
        throw new Error(
          `batchnorm (train mode): expected more than 1 value per channel, found ${n} (O=${O} · I=${I}); use mode ` +
            `'eval' for single tokens`,
        );
      }
      let s = 0;
      for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) s += x[(o * C + c) * I + i];
      mu = s / n;
      let ss = 0;
      for (let o = 0; o < O; o++) {
        for (let i = 0; i < I; i++) {
          const dv = x[(o * C + c) * I + i] - mu;
          ss += dv * dv;
        }
      }
      varUsed = ss / n; // biased: normalises the batch
      if (nextMean) nextMean[c] = (1 - opts.momentum) * runningMean[c] + opts.momentum * mu;
      if (nextVar) nextVar[c] = (1 - opts.momentum) * runningVar[c] + opts.momentum * (ss / (n - 1)); // unbiased
    } else {
      mu = runningMean[c];
      varUsed = runningVar[c];
    }
    const r = 1 / Math.sqrt(varUsed + opts.eps);
    mean[c] = mu;
    rstd[c] = r;
    const g = weight ? weight[c] : 1;
    const b = bias ? bias[c] : 0;
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < I; i++) {
        const k = (o * C + c) * I + i;
        const xh = (x[k] - mu) * r;
        xhat[k] = xh;
        out[k] = xh * g + b;
      }
    }
  }
  return { mean, rstd, xhat, mode: opts.mode };
}

/**
 * Backward (accumulates into dx, dweight, dbias).
 *   dweight_c += Σ dout·xhat;  dbias_c += Σ dout
 *   train: dx = weight·rstd·(dout − mean(dout) − xhat·mean(dout·xhat))   (means over the n = O·I entries of c;
 *          the batch mean and variance depend on every x, which gives the two subtracted terms)
 *   eval:  dx = weight·rstd·dout   (the running stats are constants)
 */
export function batchnormBackward(
  dx: Float64Array, // (O, C, I) accumulated
  dweight: Float64Array | null, // (C) accumulated (affine only)
  dbias: Float64Array | null, // (C) accumulated (affine only)
  dout: Float64Array, // (O, C, I)
  weight: Float64Array | null, // (C)
  saved: BatchNormSaved,
  dims: BatchNormDims,
): void {
  const { O, C, I } = dims;
  const n = O * I;
  const { rstd, xhat } = saved;
  for (let c = 0; c < C; c++) {
    let sumD = 0; // Σ dout
    let sumDX = 0; // Σ dout·xhat
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < I; i++) {
        const k = (o * C + c) * I + i;
        sumD += dout[k];
        sumDX += dout[k] * xhat[k];
      }
    }
    if (dweight) dweight[c] += sumDX;
    if (dbias) dbias[c] += sumD;
    const scale = (weight ? weight[c] : 1) * rstd[c];
    const meanD = sumD / n;
    const meanDX = sumDX / n;
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < I; i++) {
        const k = (o * C + c) * I + i;
        dx[k] += saved.mode === 'train' ? scale * (dout[k] - meanD - xhat[k] * meanDX) : scale * dout[k];
      }
    }
  }
}
