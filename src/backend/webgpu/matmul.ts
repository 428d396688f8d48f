// GEMM on the GPU: picks a kernel variant by shape and dispatches it. Both variants share one contract and one
// uniform struct (wgsl/matmul.wgsl header):  C = alpha · op(A) · op(B) + beta · C, batched.
//
// Variants (MONET_WEBGPU_DEBUG=1 prints which one ran):
//   matmul_rows  one workgroup per output column, K split over 64 threads — M ≤ 16 (routing, decoding, tiny T)
//   matmul       64×64 tiles, 4×4 register blocks, vec4 FMAs — everything in between
//   matmul_128   128×128 tiles, 8×8 register blocks, K step 8 (or 16: 'tile128k16') — large products
//                (M·N ≥ 2048², both ≥ 512), without edge checks when M, N are multiples of 128 and K of the step
// Each is compiled once per transpose combination through WGSL `override` constants. The size thresholds are a
// first guess, not tuned on a GPU yet: bench/gpu-job.ts times every variant so that a GPU run can settle them.

import { bindCall, type UniformOf } from './call.ts';
import type { Gpu, GpuBuffer } from './gpu.ts';

/** tile128 steps K by 8 between barriers, tile128k16 by 16 (both matmul_128.wgsl, override BK). */
export type MatmulVariant = 'auto' | 'rows' | 'tile64' | 'tile128' | 'tile128k16';

export interface MatmulShape {
  /** Rows of C. */
  M: number;
  /** Columns of C. */
  N: number;
  /** Reduced dimension. */
  K: number;
  /** A stored (K, M) instead of (M, K). */
  transA?: boolean;
  /** B stored (N, K) instead of (K, N) — a Linear weight (out, in). */
  transB?: boolean;
  alpha?: number;
  /** 0 overwrites C, 1 accumulates into it. */
  beta?: number;
  batch?: number;
  offA?: number;
  offB?: number;
  offC?: number;
  strideA?: number;
  strideB?: number;
  strideC?: number;
}

/** Rows at or below which the K-split variant wins over a mostly-empty 64-row tile. */
export const SMALL_M = 16;

/** The variant `auto` picks for a shape. */
export function matmulVariant(M: number, N: number): Exclude<MatmulVariant, 'auto'> {
  if (M <= SMALL_M) return 'rows';
  if (M >= 512 && N >= 512 && M * N >= 2048 * 2048) return 'tile128';
  return 'tile64';
}

export function matmul(
  gpu: Gpu,
  C: GpuBuffer,
  A: GpuBuffer,
  B: GpuBuffer,
  s: MatmulShape,
  variant: MatmulVariant = 'auto',
): void {
  const { M, N, K } = s;
  const batch = s.batch ?? 1;
  const offA = s.offA ?? 0,
    offB = s.offB ?? 0,
    offC = s.offC ?? 0;
  const strideA = s.strideA ?? M * K,
    strideB = s.strideB ?? K * N,
    strideC = s.strideC ?? M * N;
  const where = `matmul (M=${M}, N=${N}, K=${K}, batch=${batch})`;
  for (const [name, v] of Object.entries({ M, N, K, batch })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${where}: ${name} must be a non-negative integer, found ${v}`);
  }
  if (M === 0 || N === 0 || batch === 0) return;
  const last = (off: number, stride: number, size: number) => off + (batch - 1) * stride + size;
  if (last(offA, strideA, M * K) > A.length)
    throw new Error(`${where}: A '${A.label}' holds ${A.length} values, needs ${last(offA, strideA, M * K)}`);
  if (last(offB, strideB, K * N) > B.length)
    throw new Error(`${where}: B '${B.label}' holds ${B.length} values, needs ${last(offB, strideB, K * N)}`);
  if (last(offC, strideC, M * N) > C.length)
    throw new Error(`${where}: C '${C.label}' holds ${C.length} values, needs ${last(offC, strideC, M * N)}`);
  const constants = { TRANS_A: s.transA ? 1 : 0, TRANS_B: s.transB ? 1 : 0 };
  const dims: UniformOf<'matmul'> = {
    M,
    N,
    K,
    batch,
    offA,
    offB,
    offC,
    strideA,
    strideB,
    strideC,
    alpha: s.alpha ?? 1,
    beta: s.beta ?? 0,
  };
  const v = variant === 'auto' ? matmulVariant(M, N) : variant;
  if (v === 'rows') {
    const call = bindCall('matmul_rows', 'main', dims, { A, B, C });
    const k = gpu.kernel('matmul_rows', call.src, constants);
    const [gx, gy] = gpu.grid(N, 1);
    gpu.dispatch(k, call.uniform, call.bindings, [gx, gy, batch]);
  } else if (v === 'tile64') {
    const call = bindCall('matmul', 'main', dims, { A, B, C });
    const k = gpu.kernel('matmul', call.src, constants);
    gpu.dispatch(k, call.uniform, call.bindings, [Math.ceil(N / 64), Math.ceil(M / 64), batch]);
  } else {
    const BK = v === 'tile128k16' ? 16 : 8;
    const aligned = M % 128 === 0 && N % 128 === 0 && K % BK === 0;
    const call = bindCall('matmul_128', 'main', dims, { A, B, C });
    const k = gpu.kernel('matmul_128', call.src, { ...constants, CHECK_BOUNDS: aligned ? 0 : 1, BK });
    gpu.dispatch(k, call.uniform, call.bindings, [Math.ceil(N / 128), Math.ceil(M / 128), batch]);
  }
}
