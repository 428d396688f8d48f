// Shared pieces of the device layers: the Linear layer and the parameter-record types.
//
// Every layer in src/layers/ is written once against the kernel contract (src/backend/kernels.ts) and runs on any
// Device (wasm, webgpu, js). Conventions, as in reference/: outputs first, explicit sizes, forward returns a named
// saved-state type, backward ACCUMULATES into gradients (dx and parameter grads) and the caller zeroes them.
// Temporaries are allocated through a Scope, which the caller releases when the step is over.
//
// Dimension legend: N rows (tokens), I in_features, O out_features.

import type { Scope } from '../backend/device.ts';
import type { F32, I32, Kernels } from '../backend/kernels.ts';

/** Parameters (or gradients) keyed by their fixture/checkpoint name, as device tensors. */
export type DParams = Record<string, F32>;

/**
 * A weight matrix kept as bfloat16 on the device (a downloaded 16-bit checkpoint, inference only): `length`
 * elements packed two per int32 in `bits`, as the widenBf16 kernel reads them. The matrix products and the
 * embedding lookup read it in place (matmulBf16, gatherRowsBf16); nothing widens it into a float32 copy.
 */
export interface PackedBf16 {
  readonly dtype: 'bf16';
  readonly length: number;
  readonly bits: I32;
}

/** A weight matrix as a forward reads it: float32, or bfloat16 kept packed. Backward takes float32 only. */
export type Weight = F32 | PackedBf16;

/** y (N, O) (=, or += when accumulate) x (N, I) · Wᵀ, W (O, I) as PyTorch stores Linear weights, float32 or bf16. */
export function linearProduct(
  k: Kernels,
  y: F32,
  x: F32,
  W: Weight,
  N: number,
  I: number,
  O: number,
  accumulate: boolean,
): void {
  if (W.dtype === 'bf16') k.matmulBf16(y, x, W.bits, { M: N, N: O, K: I, accumulate });
  else k.matmul(y, x, W, { M: N, N: O, K: I, transA: false, transB: true, accumulate });
}

/** y (N, O) = x (N, I) · Wᵀ (+ bias), W (O, I) as PyTorch stores Linear weights. */
export function linearForward(
  k: Kernels,
  y: F32,
  x: F32,
  W: Weight,
  bias: F32 | null,
  N: number,
  I: number,
  O: number,
): void {
  linearProduct(k, y, x, W, N, I, O, false);
  if (bias) k.addBias(y, bias, { rows: N, cols: O });
}

/** dst (rows, cols) = table[idx[r], :]: the embedding lookup, float32 or bf16 table (·, cols). */
export function embedRows(k: Kernels, dst: F32, table: Weight, idx: I32, rows: number, cols: number): void {
  if (table.dtype === 'bf16') k.gatherRowsBf16(dst, table.bits, idx, { rows, cols });
  else k.gatherRows(dst, table, idx, { rows, cols });
}

/**
 * Linear backward, accumulating into every gradient that is not null:
 *   dx (N, I) += dy·W;   dW (O, I) += dyᵀ·x;   dbias (O) += Σ_n dy[n, :].
 */
export function linearBackward(
  k: Kernels,
  dx: F32 | null,
  dW: F32 | null,
  dbias: F32 | null,
  dy: F32,
  x: F32,
  W: F32,
  N: number,
  I: number,
  O: number,
): void {
  if (dW) k.matmul(dW, dy, x, { M: O, N: I, K: N, transA: true, transB: false, accumulate: true });
  if (dbias) k.colSum(dbias, dy, { rows: N, cols: O });
  if (dx) k.matmul(dx, dy, W, { M: N, N: I, K: O, transA: false, transB: false, accumulate: true });
}

/** A zero-filled float32 temporary of n elements, owned by the scope. */
export function zeros(sc: Scope, n: number): F32 {
  return sc.f32(n);
}
