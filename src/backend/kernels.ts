// The backend contract: every kernel the layers in src/layers/ call, in ONE place.
//
// A backend (wasm, webgpu, the plain-JS one in src/backend/js/) implements `Kernels`; a missing or misspelled kernel
// is a compile error (see the mapped type at the bottom). The layers and the LM are written once, against this
// interface, so backends differ only in kernels.
//
// Rules every backend follows (and every layer relies on):
// - Kernels are called synchronously and only ENQUEUE work. WebGPU records into a command encoder; WASM may run the
//   kernel at once. Nothing here returns data to the host: the only asynchronous operation is Device.read.
// - No data-dependent shapes. Routing (top-k, thresholds, PEER candidates, SMoE dispatch) writes indices and masks
//   into tensors of static size, and later kernels read them on the device (e.g. SMoE is dropless through a list of
//   T·k (token, slot) pairs sorted by expert, with per-expert offsets kept on the device).
// - Storage is float32 ('f32') or int32 ('i32', indices and 0/1 masks), flat row-major. Sizes are explicit: each
//   kernel takes its tensors (outputs first, llm.c style) and then ONE struct of sizes and scalars, named with the
//   dimension legend below. Shapes in the comments are the logical shapes of those flat buffers.
// - "+=" means the kernel ACCUMULATES into that output (backward kernels always do; the caller zeroes). "=" means it
//   overwrites. Outputs never alias inputs unless a kernel says so.
// - Tie rule (one rule, everywhere): top-k lists are in descending value order, equal values → lower index first.
//   Threshold masks (`x ≥ τ`) keep every tied entry.
//
// Dimension legend: T tokens (= B·S for the LM), d model dim, F hidden (intermediate) dim, E experts per side
// (Monet √N) or number of experts (SMoE), H heads, m expert dim, k top-k, P = T·k (token, slot) pairs, N rows/cols
// of a matmul, V vocabulary, B batch, S sequence length, nH/nKV attention/key-value heads, hd head dim.

/** Device tensor element types. */
export type DType = 'f32' | 'i32';

/**
 * An opaque device tensor: a flat buffer of `length` elements. Backends extend it with their own handle (a WASM
 * pointer, a GPUBuffer, a Float32Array); layers never look inside.
 */
export interface DTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly length: number;
}
export type F32 = DTensor<'f32'>;
export type I32 = DTensor<'i32'>;

/** Pointwise activations f and their derivatives. gelu is the exact erf form. silu(x) = x·sigmoid(x). */
export type ActKind = 'relu' | 'relu2' | 'gelu' | 'silu';

/** Kernel names: one list, used by backends for registration, by tests to iterate, and by docs. */
export const KERNELS = [
  // memory and elementwise
  'fill',
  'copyBlock',
  'axpby',
  'addBias',
  'colSum',
  'sumSquares',
  // matrix products
  'matmul',
  'matmulGrouped',
  'matmulGroupedTN',
  'matmulBf16',
  // activations and TopK
  'activation',
  'activationBackward',
  'swiglu',
  'swigluBackward',
  'thresholdTopkMask',
  'maskScale',
  // softmax, top-k
  'softmaxRows',
  'softmaxBackward',
  'topkRows',
  'topkRowsBackward',
  // normalisation
  'rmsnorm',
  'rmsnormBackward',
  'groupStats',
  'batchnorm',
  'batchnormBackward',
  'runningStatsUpdate',
  // Monet
  'monetRoute',
  'monetUnifLoss',
  'monetUnifBackward',
  'monetAmbLoss',
  'monetAmbBackward',
  'headSum',
  'headBroadcastAdd',
  'monetHdMix',
  'monetHdMixBackward',
  'monetVdMix',
  'monetVdMixBackward',
  // PEER
  'peerRoute',
  'peerRouteBackward',
  'peerExperts',
  'peerExpertsBackward',
  // SMoE
  'moeSort',
  'moeDispatch',
  'moeDispatchBackward',
  'moeCombine',
  'moeCombineBackward',
  'smoeAux',
  'smoeAuxBackward',
  // LM
  'gatherRows',
  'widenBf16',
  'gatherRowsBf16',
  'scatterAddRows',
  'rope',
  'ropeBackward',
  'attention',
  'attentionBackward',
  'crossEntropy',
  'crossEntropyBackward',
  // optimiser
  'stepGuard',
  'copyIf',
  'adamw',
] as const;
export type KernelName = (typeof KERNELS)[number];

/** Signatures and semantics of every kernel. */
export interface KernelSignatures {
  // ---------------------------------------------------------------- memory and elementwise
  /** x[i] = value for i < n. */
  fill(x: DTensor, s: { n: number; value: number }): void;
  /**
   * 2-D block copy: dst[dstOffset + r·dstLd + c] (=, or += when accumulate) src[srcOffset + r·srcLd + c],
   * r < rows, c < cols. Slices columns (Monet-VD halves), copies whole tensors (rows = 1). Same dtype both sides.
   */
  copyBlock(
    dst: DTensor,
    src: DTensor,
    s: {
      rows: number;
      cols: number;
      dstLd: number;
      srcLd: number;
      dstOffset: number;
      srcOffset: number;
      accumulate: boolean;
    },
  ): void;
  /** y[i] = alpha·x[i] + beta·y[i], i < n. When beta = 0 the old y is not read (NaN-safe). */
  axpby(y: F32, x: F32, s: { n: number; alpha: number; beta: number }): void;
  /** y (rows, cols) += bias (cols) broadcast over rows. */
  addBias(y: F32, bias: F32, s: { rows: number; cols: number }): void;
  /** out (cols) += Σ_r x[r, c]: the column sum, i.e. a bias gradient. */
  colSum(out: F32, x: F32, s: { rows: number; cols: number }): void;
  /** out (1) (=, or += when accumulate) Σ_i x[i]², i < n: the squared gradient norm. */
  sumSquares(out: F32, x: F32, s: { n: number; accumulate: boolean }): void;

  // ---------------------------------------------------------------- matrix products
  /**
   * C (M, N) (=, or += when accumulate) op(A) · op(B), where op(A) is (M, K): A stored (M, K), or (K, M) when transA;
   * op(B) is (K, N): B stored (K, N), or (N, K) when transB. A Linear layer y = x·Wᵀ is transB; its backward
   * dx += dy·W is plain, dW += dyᵀ·x is transA.
   */
  matmul(
    c: F32,
    a: F32,
    b: F32,
    s: { M: number; N: number; K: number; transA: boolean; transB: boolean; accumulate: boolean },
  ): void;
  /**
   * Grouped (per-expert) product over rows sorted by group. Rows offsets[g] ≤ r < offsets[g+1] belong to group g
   * (offsets (G+1) int32 on the device, offsets[G] = P):
   *   C[r, :] (=, or += when accumulate) A[r, :] · op(B[g]),
   *   A (P, K), C (P, N), B (G, N, K) when transB else (G, K, N).
   */
  matmulGrouped(
    c: F32,
    a: F32,
    b: F32,
    offsets: I32,
    s: { P: number; N: number; K: number; G: number; transB: boolean; accumulate: boolean },
  ): void;
  /**
   * Grouped weight gradient: dB[g] (N, K) += Σ_{r in group g} dC[r, :]ᵀ ⊗ A[r, :];  dC (P, N), A (P, K), dB (G, N, K).
   */
  matmulGroupedTN(db: F32, dc: F32, a: F32, offsets: I32, s: { P: number; N: number; K: number; G: number }): void;
  /**
   * A Linear layer on 16-bit weights: C (M, N) (=, or += when accumulate) A (M, K) · Bᵀ, where B (N, K) is stored as
   * bfloat16, packed as widenBf16 reads it (element n·K + k), and each element is widened exactly to float32 as it is
   * read — never written out as a float32 copy. The same numbers as widenBf16 into a float32 B followed by matmul
   * (transB), up to the order of the sums (docs/monetllm.md says where the order is kept).
   */
  matmulBf16(c: F32, a: F32, b: I32, s: { M: number; N: number; K: number; accumulate: boolean }): void;

  // ---------------------------------------------------------------- activations and TopK
  /** y[i] = f(x[i]), i < n. */
  activation(y: F32, x: F32, s: { n: number; kind: ActKind }): void;
  /** dx[i] += dy[i]·f'(x[i]). relu'(0) = 0; relu2'(x) = 2·max(x, 0). */
  activationBackward(dx: F32, dy: F32, x: F32, s: { n: number; kind: ActKind }): void;
  /** h[i] = silu(g[i])·u[i]. */
  swiglu(h: F32, g: F32, u: F32, s: { n: number }): void;
  /** dg[i] += dh[i]·u[i]·silu'(g[i]);  du[i] += dh[i]·silu(g[i]). */
  swigluBackward(dg: F32, du: F32, dh: F32, g: F32, u: F32, s: { n: number }): void;
  /**
   * mask (rows, n) int32 = 1 where x[r, j] ≥ τ_k(x[r, :]) (the k-th largest value of the row; ties all kept), else 0.
   */
  thresholdTopkMask(mask: I32, x: F32, s: { rows: number; n: number; k: number }): void;
  /**
   * y[i] = x[i]·(alpha + (1 − alpha)·mask[i]). The TopK activation's α-blend; the same kernel is its own backward
   * (the factor does not depend on x). y may alias x.
   */
  maskScale(y: F32, x: F32, mask: I32, s: { n: number; alpha: number }): void;

  // ---------------------------------------------------------------- softmax, top-k
  /** y (rows, n) = softmax of each row of x (max-subtracted). */
  softmaxRows(y: F32, x: F32, s: { rows: number; n: number }): void;
  /** dx[r, j] += y[r, j]·(dy[r, j] − Σ_j' y[r, j']·dy[r, j']). */
  softmaxBackward(dx: F32, y: F32, dy: F32, s: { rows: number; n: number }): void;
  /**
   * idx (rows, k) int32, val (rows, k): the k largest entries of each row of x (rows, n), descending, ties → lower
   * index.
   */
  topkRows(idx: I32, val: F32, x: F32, s: { rows: number; n: number; k: number }): void;
  /** dx[r, idx[r, s]] += dval[r, s]: the gradient of the selected values flows back to where they came from. */
  topkRowsBackward(dx: F32, dval: F32, idx: I32, s: { rows: number; n: number; k: number }): void;

  // ---------------------------------------------------------------- normalisation
  /** rstd (rows) = 1/sqrt(mean_j x² + eps);  y (rows, d) = x·rstd·w. */
  rmsnorm(y: F32, rstd: F32, x: F32, w: F32, s: { rows: number; d: number; eps: number }): void;
  /** dx += ∂/∂x, dw += ∂/∂w of Σ dy ⊙ rmsnorm(x, w), using the rstd saved by rmsnorm. */
  rmsnormBackward(dx: F32, dw: F32, dy: F32, x: F32, w: F32, rstd: F32, s: { rows: number; d: number }): void;
  /**
   * x viewed as (outer, groups, inner): mean (groups) and BIASED variance (groups) of each group over its
   * outer·inner entries. PEER's query BN: (T, H·dk, 1); Monet's router BN: (T, H, E).
   */
  groupStats(mean: F32, variance: F32, x: F32, s: { outer: number; groups: number; inner: number }): void;
  /** y (rows, cols) = (x − mean[c]) / sqrt(variance[c] + eps) · gamma[c] + beta[c]. */
  batchnorm(
    y: F32,
    x: F32,
    mean: F32,
    variance: F32,
    gamma: F32,
    beta: F32,
    s: { rows: number; cols: number; eps: number },
  ): void;
  /**
   * Backward of batchnorm over (rows, cols), accumulating into dx, dgamma, dbeta. train: mean/variance are the batch
   * statistics of x (gradient flows through them); otherwise they are constants (running stats).
   */
  batchnormBackward(
    dx: F32,
    dgamma: F32,
    dbeta: F32,
    dy: F32,
    x: F32,
    mean: F32,
    variance: F32,
    gamma: F32,
    s: { rows: number; cols: number; eps: number; train: boolean },
  ): void;
  /**
   * PyTorch BatchNorm running statistics, in place: runMean = (1 − momentum)·runMean + momentum·mean;
   * runVar = (1 − momentum)·runVar + momentum·variance·count/(count − 1) (the unbiased batch variance).
   */
  runningStatsUpdate(
    runMean: F32,
    runVar: F32,
    mean: F32,
    variance: F32,
    s: { groups: number; count: number; momentum: number },
  ): void;

  // ---------------------------------------------------------------- Monet (docs/spec.md §1.3–1.10)
  /**
   * The router after its logits: for each (t, h), n_i = (z[t,h,i] − mean[h]) / sqrt(variance[h] + eps),
   * s = min(max_i n_i, sigma), mask[t,h,i] = n_i ≥ s, g[t,h,:] = softmax of z over the masked entries (0 elsewhere).
   * z, g, mask (T, H, E); mean, variance (H) (batch stats in train mode, running stats in eval mode).
   */
  monetRoute(
    g: F32,
    mask: I32,
    z: F32,
    mean: F32,
    variance: F32,
    s: { T: number; H: number; E: number; sigma: number; eps: number },
  ): void;
  /** loss (1) += scale · (−1/(2·H·E)) · Σ_{h,i} log(ḡ[h,i] + eps), ḡ = mean over t of g (T, H, E). */
  monetUnifLoss(loss: F32, g: F32, s: { T: number; H: number; E: number; eps: number; scale: number }): void;
  /** dg[t,h,i] += scale · (−1/(2·H·E)) / (T·(ḡ[h,i] + eps)). */
  monetUnifBackward(dg: F32, g: F32, s: { T: number; H: number; E: number; eps: number; scale: number }): void;
  /** loss (1) += scale · (1/(2·H·T)) · Σ_{t,h} (1 − max_i g[t,h,i]). */
  monetAmbLoss(loss: F32, g: F32, s: { T: number; H: number; E: number; scale: number }): void;
  /** dg[t,h,i*] += scale · (−1/(2·H·T)) at i* = argmax_i g[t,h,i] (first index on ties). */
  monetAmbBackward(dg: F32, g: F32, s: { T: number; H: number; E: number; scale: number }): void;
  /** G (T, E) = Σ_h g[t, h, :], g (T, H, E). */
  headSum(G: F32, g: F32, s: { T: number; H: number; E: number }): void;
  /** dg[t, h, i] += dG[t, i] for every h (the backward of headSum). */
  headBroadcastAdd(dg: F32, dG: F32, s: { T: number; H: number; E: number }): void;
  /**
   * MoHDE contraction (docs/spec.md §1.4) without forming anything E²-sized, per token:
   *   cc[h,c] = Σ_i g1[h,i]·a[i,c]  (saved);   y[j,c] = Σ_h g2[h,j]·cc[h,c].
   * a, y (T, E, m); g1, g2 (T, H, E); cc (T, H, m).
   */
  monetHdMix(y: F32, cc: F32, a: F32, g1: F32, g2: F32, s: { T: number; H: number; E: number; m: number }): void;
  /**
   * Backward of monetHdMix: dg2[h,j] += Σ_c dy[j,c]·cc[h,c];  dcc[h,c] = Σ_j g2[h,j]·dy[j,c];
   * dg1[h,i] += Σ_c dcc[h,c]·a[i,c];  da[i,c] += Σ_h g1[h,i]·dcc[h,c].
   */
  monetHdMixBackward(
    da: F32,
    dg1: F32,
    dg2: F32,
    dy: F32,
    a: F32,
    g1: F32,
    g2: F32,
    cc: F32,
    s: { T: number; H: number; E: number; m: number },
  ): void;
  /**
   * MoVDE contractions (docs/spec.md §1.5), m here = moe_dim/2, per token:
   *   c1[h,c] = Σ_i g1[h,i]·a1[i,c];  c2[h,c] = Σ_j g2[h,j]·a2[j,c]             (saved)
   *   h11[i,c] = G1[i]·a1[i,c];  h12[i,c] = Σ_h g1[h,i]·c2[h,c];
   *   h21[j,c] = Σ_h g2[h,j]·c1[h,c];  h22[j,c] = G2[j]·a2[j,c]
   * a1, a2, h11..h22 (T, E, m); g1, g2 (T, H, E); G1, G2 (T, E) from headSum; c1, c2 (T, H, m).
   */
  monetVdMix(
    h11: F32,
    h12: F32,
    h21: F32,
    h22: F32,
    c1: F32,
    c2: F32,
    a1: F32,
    a2: F32,
    g1: F32,
    g2: F32,
    G1: F32,
    G2: F32,
    s: { T: number; H: number; E: number; m: number },
  ): void;
  /**
   * Backward of monetVdMix given dh11..dh22 (T, E, m), accumulating into da1, da2 (T, E, m) and dg1, dg2 (T, H, E)
   * (the G1/G2 paths land on every head: dg1[h,i] += Σ_c dh11[i,c]·a1[i,c], likewise dg2 from dh22).
   */
  monetVdMixBackward(
    da1: F32,
    da2: F32,
    dg1: F32,
    dg2: F32,
    dh11: F32,
    dh12: F32,
    dh21: F32,
    dh22: F32,
    a1: F32,
    a2: F32,
    g1: F32,
    g2: F32,
    G1: F32,
    G2: F32,
    c1: F32,
    c2: F32,
    s: { T: number; H: number; E: number; m: number },
  ): void;

  // ---------------------------------------------------------------- PEER (docs/spec.md §2.2, §2.5)
  /**
   * Product-key retrieval per (t, h): q1, q2 = the halves of q[t, h·dk : (h+1)·dk]; s1[a] = q1·C[a], s2[b] = q2·C'[b]
   * (C = subKeys[0], C' = subKeys[1], each (n, dk/2), n = √N); top-k of s1 and of s2; the k² candidates
   * (a, b) score s1[a] + s2[b]; ids[t,h,:] = the final top-k ids a·n + b (descending score, ties → lower id) and
   * scores[t,h,:] their scores. q (T, H·dk); subKeys (2, n, dk/2); ids, scores (T, H, k).
   */
  peerRoute(
    ids: I32,
    scores: F32,
    q: F32,
    subKeys: F32,
    s: { T: number; H: number; dk: number; n: number; k: number },
  ): void;
  /**
   * Backward of the selected scores: with a = id / n, b = id mod n: dq1 += Σ_r dscores_r·C[a_r],
   * dq2 += Σ_r dscores_r·C'[b_r], dC[a_r] += dscores_r·q1, dC'[b_r] += dscores_r·q2 (scatter-add).
   */
  peerRouteBackward(
    dq: F32,
    dSubKeys: F32,
    dscores: F32,
    q: F32,
    subKeys: F32,
    ids: I32,
    s: { T: number; H: number; dk: number; n: number; k: number },
  ): void;
  /**
   * Singleton experts: hpre[t,h,r] = wDown[id]·x[t] (saved), y[t] += Σ_{h,r} w[t,h,r]·f(hpre)·wUp[id], id = ids[t,h,r].
   * x, y (T, d); wDown, wUp (N, d); ids, w, hpre (T, H, k).
   */
  peerExperts(
    y: F32,
    hpre: F32,
    x: F32,
    wDown: F32,
    wUp: F32,
    ids: I32,
    w: F32,
    s: { T: number; H: number; k: number; d: number; kind: ActKind },
  ): void;
  /**
   * Backward of peerExperts (docs/spec.md §2.5): dwUp[id] += w·f(hpre)·dy[t] (scatter-add); dov = dy[t]·wUp[id];
   * dw[t,h,r] += dov·f(hpre); dh = dov·w·f'(hpre); dwDown[id] += dh·x[t] (scatter-add); dx[t] += dh·wDown[id].
   */
  peerExpertsBackward(
    dx: F32,
    dwDown: F32,
    dwUp: F32,
    dw: F32,
    dy: F32,
    x: F32,
    wDown: F32,
    wUp: F32,
    ids: I32,
    w: F32,
    hpre: F32,
    s: { T: number; H: number; k: number; d: number; kind: ActKind },
  ): void;

  // ---------------------------------------------------------------- SMoE, dropless (docs/spec.md §3.4)
  /**
   * Sort the P = T·k (token, slot) pairs by expert (stable: pair p = t·k + s in increasing order within an expert).
   * expertIdx (P) = the topk ids; order (P): row r of the sorted list holds pair order[r]; pos (P): pair p sits at
   * row pos[p]; offsets (E+1): rows of expert e are offsets[e] ≤ r < offsets[e+1].
   */
  moeSort(order: I32, pos: I32, offsets: I32, expertIdx: I32, s: { P: number; E: number }): void;
  /** xs[r, :] = x[order[r] div k, :]. x (T, d), xs (P, d). */
  moeDispatch(xs: F32, x: F32, order: I32, s: { P: number; k: number; d: number }): void;
  /** dx[t, :] += Σ_s dxs[pos[t·k + s], :]. */
  moeDispatchBackward(dx: F32, dxs: F32, pos: I32, s: { T: number; k: number; d: number }): void;
  /** y[t, :] += Σ_s w[t·k + s]·ys[pos[t·k + s], :]. ys (P, d), w (T, k). */
  moeCombine(y: F32, ys: F32, w: F32, pos: I32, s: { T: number; k: number; d: number }): void;
  /** dys[pos[p], :] += w[p]·dy[t, :];  dw[p] += dy[t, :]·ys[pos[p], :]  (p = t·k + s). */
  moeCombineBackward(
    dys: F32,
    dw: F32,
    dy: F32,
    ys: F32,
    w: F32,
    pos: I32,
    s: { T: number; k: number; d: number },
  ): void;
  /**
   * SMoE aux losses from the gate logits z (T, E) and the selected ids (T, k): probs (T, E) = softmax(z) (saved),
   * lse (T) = logsumexp(z) (saved); lossBalance (1) += scale·E·Σ_i f_i·P_i with f_i = count_i/(T·k),
   * P_i = mean_t probs[t, i]; lossZ (1) += scale·(1/T)·Σ_t lse_t².
   */
  smoeAux(
    lossBalance: F32,
    lossZ: F32,
    probs: F32,
    lse: F32,
    z: F32,
    expertIdx: I32,
    s: { T: number; E: number; k: number; scale: number },
  ): void;
  /**
   * dz[t, j] += coefBalance·(E/T)·probs[t,j]·(f_j − Σ_i f_i·probs[t,i]) + coefZ·(2/T)·lse_t·probs[t,j]
   * (the coefficients already include any averaging scale).
   */
  smoeAuxBackward(
    dz: F32,
    probs: F32,
    lse: F32,
    expertIdx: I32,
    s: { T: number; E: number; k: number; coefBalance: number; coefZ: number },
  ): void;

  // ---------------------------------------------------------------- LM
  /** dst[r, :] = table[idx[r], :]. idx (rows), table (·, cols), dst (rows, cols). Embedding lookup. */
  gatherRows(dst: F32, table: F32, idx: I32, s: { rows: number; cols: number }): void;
  /**
   * 16-bit weights: dst[i] (n) = the float32 whose upper half is bfloat16 i of `packed` and lower half 0 (exact).
   * packed (⌈n/2⌉) holds two bfloat16 per int32, element 2j in the low 16 bits of packed[j], 2j + 1 in the high ones
   * (a little-endian Uint16Array viewed as Int32Array).
   */
  widenBf16(dst: F32, packed: I32, s: { n: number }): void;
  /** dst[r, :] = table[idx[r], :] widened from bfloat16 (packed as widenBf16 reads it): the 16-bit embedding lookup. */
  gatherRowsBf16(dst: F32, table: I32, idx: I32, s: { rows: number; cols: number }): void;
  /** dst[idx[r], :] += src[r, :] (duplicates add). Embedding backward. */
  scatterAddRows(dst: F32, src: F32, idx: I32, s: { rows: number; cols: number }): void;
  /**
   * RoPE, Hugging Face rotate-half: x, y (B, S, heads, hd); position = s; inv_freq_i = theta^(−2i/hd), i < hd/2;
   * y[..i] = x_i·cos − x_{i+hd/2}·sin, y[..i+hd/2] = x_{i+hd/2}·cos + x_i·sin.
   */
  rope(y: F32, x: F32, s: { B: number; S: number; heads: number; hd: number; theta: number }): void;
  /** dx += the rotation by −angle of dy (RoPE is orthogonal). */
  ropeBackward(dx: F32, dy: F32, s: { B: number; S: number; heads: number; hd: number; theta: number }): void;
  /**
   * Causal attention with grouped KV heads (head h reads kv head h / (nH/nKV)): probs[b,h,i,j] = softmax_j≤i
   * (q·k/√hd) (0 for j > i, saved); out[b,i,h,:] = Σ_j probs·v. q, out (B, S, nH·hd); k, v (B, S, nKV·hd);
   * probs (B, nH, S, S).
   */
  attention(
    out: F32,
    probs: F32,
    q: F32,
    k: F32,
    v: F32,
    s: { B: number; S: number; nH: number; nKV: number; hd: number },
  ): void;
  /** Backward of attention, accumulating into dq, dk, dv. */
  attentionBackward(
    dq: F32,
    dk: F32,
    dv: F32,
    dout: F32,
    q: F32,
    k: F32,
    v: F32,
    probs: F32,
    s: { B: number; S: number; nH: number; nKV: number; hd: number },
  ): void;
  /**
   * Next-token cross-entropy: probs (B·S, V) = softmax(logits) (saved; the last position of each sequence too);
   * loss (1) += scale · Σ_{b, s < S−1} −log probs[b·S + s, tokens[b·S + s + 1]]. scale = 1/(B·(S−1)) gives the mean.
   */
  crossEntropy(
    loss: F32,
    probs: F32,
    logits: F32,
    tokens: I32,
    s: { B: number; S: number; V: number; scale: number },
  ): void;
  /** dlogits[b·S + s, :] += scale·(probs − onehot(tokens[b·S + s + 1])) for s < S−1 (0 for the last position). */
  crossEntropyBackward(
    dlogits: F32,
    probs: F32,
    tokens: I32,
    s: { B: number; S: number; V: number; scale: number },
  ): void;

  // ---------------------------------------------------------------- optimiser
  /**
   * The step decision, on the device: from the step's report in ctl (layout STEP below: ctl[STEP.loss] = Σ loss over
   * the `accum` micro-batches, ctl[STEP.normSq] = squared norm of the summed gradient), with loss = Σ loss / accum and
   * ‖g‖ = sqrt(normSq) / accum (the norm of the averaged gradient):
   * - loss and ‖g‖ finite: ctl[scale] = clip > 0 ? min(1, clip/(‖g‖ + 1e-6)) : 1 (PyTorch clip_grad_norm_);
   *   ctl[skip] = 0; ctl[streak] = 0.
   * - either one NaN or ±Inf: ctl[scale] = 0; ctl[skip] = 1; ctl[faults] += 1; ctl[streak] += 1; ctl[streakFrom] =
   *   step when the streak starts here; ctl[lastStep] = step, ctl[lastLoss] = loss, ctl[lastNorm] = ‖g‖.
   * adamw and copyIf then read ctl; nothing returns to the host until the host reads ctl (every few steps).
   */
  stepGuard(ctl: F32, s: { accum: number; clip: number; step: number }): void;
  /**
   * When cond[at] ≠ 0: dst[i] = src[i], i < n; otherwise nothing. (Restores BatchNorm statistics of a skipped step.)
   */
  copyIf(dst: F32, src: F32, cond: F32, s: { n: number; at: number }): void;
  /**
   * AdamW step in place (PyTorch semantics, decoupled weight decay), guarded by the step-control tensor ctl (STEP):
   * when ctl[STEP.skip] ≠ 0 nothing is written; otherwise with g ← g·gradScale·ctl[STEP.scale] (averaging, clipping):
   *   p −= lr·weightDecay·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
   *   p −= lr·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps).
   */
  adamw(
    p: F32,
    g: F32,
    m: F32,
    v: F32,
    ctl: F32,
    s: {
      n: number;
      lr: number;
      beta1: number;
      beta2: number;
      eps: number;
      weightDecay: number;
      step: number;
      gradScale: number;
    },
  ): void;
}

/**
 * Slots of the step-control tensor of stepGuard / adamw / copyIf (STEP.size floats; the engine's report of aux terms
 * may follow). Counters are float32: exact up to 2^24 steps.
 */
export const STEP = {
  /** clip factor applied to the gradient (0 on a skipped step) */
  scale: 0,
  /** 1 when this step is skipped (loss or gradient norm not finite), else 0 */
  skip: 1,
  /** skipped steps since the tensor was created */
  faults: 2,
  /** consecutive skipped steps ending at the latest step (0 after a good step) */
  streak: 3,
  /** `step` of the first skipped step of the current (or last) streak */
  streakFrom: 4,
  /** `step`, loss and gradient norm of the latest skipped step */
  lastStep: 5,
  lastLoss: 6,
  lastNorm: 7,
  /** the report stepGuard reads: Σ loss over the micro-batches, squared norm of the summed gradient */
  loss: 8,
  normSq: 9,
  size: 10,
} as const;

// Completeness, checked by the compiler both ways: every name in KERNELS has a signature and every signature is
// listed in KERNELS. If either line below fails to compile, the list and the interface disagree.
type Missing<A, B> = Exclude<A, B>;
const _everyNameHasSignature: [Missing<KernelName, keyof KernelSignatures>] extends [never] ? true : never = true;
const _everySignatureIsNamed: [Missing<keyof KernelSignatures, KernelName>] extends [never] ? true : never = true;
void _everyNameHasSignature;
void _everySignatureIsNamed;

/** What a backend implements: one method per kernel name. A backend missing one does not compile. */
export type Kernels = { readonly [K in KernelName]: KernelSignatures[K] };

/** A kernel called without its types: what wrappers that treat every kernel alike (timing, lazy zeroing) see. */
export type AnyKernelCall = (...args: unknown[]) => void;

/**
 * A Kernels whose every entry is `wrap(name, call)`, `call` being `base`'s kernel of that name, for wrappers that
 * treat every kernel alike (lazy zeroing, timing). A wrapper passes the arguments it gets on to `call`.
 */
export function wrapKernels(base: Kernels, wrap: (name: KernelName, call: AnyKernelCall) => AnyKernelCall): Kernels {
  const out = {} as Record<KernelName, AnyKernelCall>;
  // A kernel's typed signature, seen as an untyped call: the wrapper calls it with the arguments of a typed call.
  // Bound, so that a backend whose kernels are methods keeps its `this`.
  for (const name of KERNELS) out[name] = wrap(name, (base[name] as AnyKernelCall).bind(base));
  return out;
}
