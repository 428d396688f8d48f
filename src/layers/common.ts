// Shared pieces of the device layers: the Linear layer and the parameter-record types.
//
// Every layer in src/layers/ is written once against the kernel contract (src/backend/kernels.ts) and runs on any
// Device (wasm, webgpu, js). Conventions, as in reference/: outputs first, explicit sizes, forward returns a named
// saved-state type, backward ACCUMULATES into gradients (dx and parameter grads) and the caller zeroes them.
// Temporaries are allocated through a Scope, which the caller releases when the step is over.
//
// Dimension legend: N rows (tokens), I in_features, O out_features.

import type { Scope } from '../backend/device.ts';
import type { F32, Kernels } from '../backend/kernels.ts';

/** Parameters (or gradients) keyed by their fixture/checkpoint name, as device tensors. */
export type DParams = Record<string, F32>;

/** y (N, O) = x (N, I) · Wᵀ (+ bias), W (O, I) as PyTorch stores Linear weights. */
export function linearForward(
  k: Kernels,
  y: F32,
  x: F32,
  W: F32,
  bias: F32 | null,
  N: number,
  I: number,
  O: number,
): void {
  k.matmul(y, x, W, { M: N, N: O, K: I, transA: false, transB: true, accumulate: false });
  if (bias) k.addBias(y, bias, { rows: N, cols: O });
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
