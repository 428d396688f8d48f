// 16-bit weights read in place: bfloat16 matrices widened to float32 in registers as the kernels read them, never
// written out as a float32 copy (a 1.4B model's matrices are 2.9 GB as bfloat16; a float32 copy would double the
// bytes every token reads and write them once more).
//
// Dimension legend: M rows of C (tokens), N columns of C (the weight's rows: output features), K the contracted
// dimension (input features). B (N, K) is a Linear weight (out, in) as PyTorch stores it; C (M, N) = A (M, K) · Bᵀ.
//
// Storage: two bfloat16 per 32-bit word, element e at byte 2·e (a little-endian u16 array; src/backend/kernels.ts
// widenBf16). bfloat16 → float32 is exact: the 16 bits are the float's upper half. Eight consecutive elements loaded
// as one v128 and viewed as i32x4 hold elements 2j (low half) and 2j + 1 (high half) in lane j, so
//   even = i32x4.shl(v, 16)                 elements 0, 2, 4, 6 as float32
//   odd  = v128.and(v, 0xffff0000)          elements 1, 3, 5, 7
// two instructions per eight weights, wherever the eight start (unaligned loads are fine in WebAssembly).
//
// Two products:
//   gemvBf16 (M = 1, decoding one token): every weight is used once, so the product is bound by reading B. A is
//     first reordered per block of eight into (a0 a2 a4 a6 | a1 a3 a5 a7) in scratch, so the even and odd halves
//     meet their inputs through plain loads; four rows of B share those loads; each row keeps an even and an odd
//     accumulator, added up at the end. Its order of the sums is not gemm's: it differs from widen + matmul by
//     float32 rounding.
//   gemmBf16 (M ≥ 2: a prompt, a whole forward): the blocked gemm of matmul.ts with B widened while it is packed
//     (packBBf16). Blocking, packing of A and micro-kernel are gemm's, so each element is the same sum in the same
//     order: bit for bit widenBf16 then gemm.

import { widenBf16 } from './elementwise';
import { KC, MC, MR, NC, NR, madd, micro4x8, packA, transpose4 } from './matmul';
import { ldi } from './common';

/** Floats of scratch matmulBf16 needs: gemm's for an N-column product, or K (+ 8) for the reordered A of gemvBf16. */
export function matmulBf16ScratchFloats(N: i32, K: i32): i32 {
  const nc = min(NC, ((N + NR - 1) / NR) * NR);
  return max(MR * NR + MC * KC + KC * nc, K + 8);
}

/** The float32 whose upper half is the bfloat16 at `p` (a byte address). */
// @ts-ignore: decorator
@inline function bf16(p: usize): f32 {
  return reinterpret<f32>(<u32>load<u16>(p) << 16);
}

/** Σ of the four lanes of e + o, in lane order (one fixed order: results do not depend on the thread split). */
// @ts-ignore: decorator
@inline function lanes(e: v128, o: v128): f32 {
  const s = f32x4.add(e, o);
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3);
}

/**
 * c[n] (=, or += when accumulate) Σ_k a[k]·B[n, k] for n < N: a (K) float32, B (N, K) bfloat16 at b, c (N).
 * scratch: K + 8 floats (the reordered a).
 */
export function gemvBf16(c: usize, a: usize, b: usize, N: i32, K: i32, accumulate: bool, scratch: usize): void {
  const K8 = K & ~7;
  for (let k = 0; k < K8; k += 8) {
    const x = a + (<usize>k << 2);
    const lo = v128.load(x), hi = v128.load(x, 16);
    v128.store(scratch + (<usize>k << 2), i32x4.shuffle(lo, hi, 0, 2, 4, 6));
    v128.store(scratch + (<usize>k << 2), i32x4.shuffle(lo, hi, 1, 3, 5, 7), 16);
  }
  const high = i32x4.splat(-65536); // 0xffff0000
  const rowBytes = <usize>K << 1;
  let n = 0;
  // four rows at a time: e·/o· the even/odd accumulators of rows n .. n + 3
  for (; n + 4 <= N; n += 4) {
    const r0 = b + <usize>n * rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
    let e0 = f32x4.splat(0), o0 = f32x4.splat(0), e1 = f32x4.splat(0), o1 = f32x4.splat(0);
    let e2 = f32x4.splat(0), o2 = f32x4.splat(0), e3 = f32x4.splat(0), o3 = f32x4.splat(0);
    for (let k = 0; k < K8; k += 8) {
      const ae = v128.load(scratch + (<usize>k << 2)), ao = v128.load(scratch + (<usize>k << 2), 16);
      const at = <usize>k << 1;
      let v = v128.load(r0 + at);
      e0 = madd(i32x4.shl(v, 16), ae, e0);
      o0 = madd(v128.and(v, high), ao, o0);
      v = v128.load(r1 + at);
      e1 = madd(i32x4.shl(v, 16), ae, e1);
      o1 = madd(v128.and(v, high), ao, o1);
      v = v128.load(r2 + at);
      e2 = madd(i32x4.shl(v, 16), ae, e2);
      o2 = madd(v128.and(v, high), ao, o2);
      v = v128.load(r3 + at);
      e3 = madd(i32x4.shl(v, 16), ae, e3);
      o3 = madd(v128.and(v, high), ao, o3);
    }
    let s0 = lanes(e0, o0), s1 = lanes(e1, o1), s2 = lanes(e2, o2), s3 = lanes(e3, o3);
    for (let k = K8; k < K; k++) {
      const x = load<f32>(a + (<usize>k << 2));
      const at = <usize>k << 1;
      s0 += x * bf16(r0 + at);
      s1 += x * bf16(r1 + at);
      s2 += x * bf16(r2 + at);
      s3 += x * bf16(r3 + at);
    }
    const out = c + (<usize>n << 2);
    if (accumulate) {
      s0 += load<f32>(out);
      s1 += load<f32>(out, 4);
      s2 += load<f32>(out, 8);
      s3 += load<f32>(out, 12);
    }
    store<f32>(out, s0);
    store<f32>(out, s1, 4);
    store<f32>(out, s2, 8);
    store<f32>(out, s3, 12);
  }
  for (; n < N; n++) {
    const r = b + <usize>n * rowBytes;
    let e = f32x4.splat(0), o = f32x4.splat(0);
    for (let k = 0; k < K8; k += 8) {
      const v = v128.load(r + (<usize>k << 1));
      e = madd(i32x4.shl(v, 16), v128.load(scratch + (<usize>k << 2)), e);
      o = madd(v128.and(v, high), v128.load(scratch + (<usize>k << 2), 16), o);
    }
    let s = lanes(e, o);
    for (let k = K8; k < K; k++) s += load<f32>(a + (<usize>k << 2)) * bf16(r + (<usize>k << 1));
    const out = c + (<usize>n << 2);
    store<f32>(out, accumulate ? load<f32>(out) + s : s);
  }
}

/**
 * matmul.ts packB for a bfloat16 Linear weight: op(B)[p, j] = B[j, p] widened, for p0 ≤ p < p0 + kc and
 * j0 ≤ j < j0 + nc, into NR-wide panels Bp[panel][p][jj], columns beyond nc zero. B (N, K) bfloat16 at b.
 */
function packBBf16(bp: usize, b: usize, K: i32, p0: i32, kc: i32, j0: i32, nc: i32): void {
  const rowBytes = <usize>K << 1;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const panel = bp + <usize>(jr * kc) * 4;
    if (cols == NR) {
      // two groups of four rows: widen eight elements of each row, store them as two transposed 4×4 blocks
      for (let jq = 0; jq < NR; jq += 4) {
        const r0 = b + <usize>(j0 + jr + jq) * rowBytes + (<usize>p0 << 1);
        let p = 0;
        for (; p + 8 <= kc; p += 8) {
          const src = r0 + (<usize>p << 1);
          const v0 = v128.load(src), v1 = v128.load(src + rowBytes);
          const v2 = v128.load(src + 2 * rowBytes), v3 = v128.load(src + 3 * rowBytes);
          const dst = panel + (<usize>(p * NR + jq) << 2);
          transpose4(dst, NR * 4, i32x4.shl(i32x4.extend_low_i16x8_u(v0), 16),
            i32x4.shl(i32x4.extend_low_i16x8_u(v1), 16), i32x4.shl(i32x4.extend_low_i16x8_u(v2), 16),
            i32x4.shl(i32x4.extend_low_i16x8_u(v3), 16));
          transpose4(dst + 4 * NR * 4, NR * 4, i32x4.shl(i32x4.extend_high_i16x8_u(v0), 16),
            i32x4.shl(i32x4.extend_high_i16x8_u(v1), 16), i32x4.shl(i32x4.extend_high_i16x8_u(v2), 16),
            i32x4.shl(i32x4.extend_high_i16x8_u(v3), 16));
        }
        for (; p < kc; p++) {
          const src = r0 + (<usize>p << 1);
          const dst = panel + (<usize>(p * NR + jq) << 2);
          for (let i = 0; i < 4; i++) store<f32>(dst + (<usize>i << 2), bf16(src + <usize>i * rowBytes));
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let jj = 0; jj < NR; jj++) {
          const v: f32 = jj < cols ? bf16(b + <usize>(j0 + jr + jj) * rowBytes + (<usize>(p0 + p) << 1)) : 0;
          store<f32>(panel + (<usize>(p * NR + jj) << 2), v);
        }
      }
    }
  }
}

/**
 * C[i, j] (=, or +=) Σ_p A[i, p]·B[j, p]: A (M, K) float32 row-major at a, B (N, K) bfloat16 at b, C at c with row
 * stride ldc. matmul.ts gemm's loops with packBBf16 in place of packB. scratch: matmulBf16ScratchFloats(N, K) floats.
 */
export function gemmBf16(M: i32, N: i32, K: i32, a: usize, b: usize, c: usize, ldc: i32, accumulate: bool,
  scratch: usize): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate) for (let i = 0; i < M; i++) memory.fill(c + (<usize>(i * ldc) << 2), 0, <usize>N << 2);
    return;
  }
  const edge = scratch;
  const ap = scratch + (<usize>(MR * NR) << 2);
  const bp = ap + (<usize>(MC * KC) << 2);
  const ldcb = <usize>ldc << 2;
  for (let j0 = 0; j0 < N; j0 += NC) {
    const nc = min(NC, N - j0);
    for (let p0 = 0; p0 < K; p0 += KC) {
      const kc = min(KC, K - p0);
      const acc = accumulate || p0 > 0;
      packBBf16(bp, b, K, p0, kc, j0, nc);
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = min(MC, M - i0);
        packA(ap, a, K, 1, i0, mc, p0, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bpanel = bp + <usize>(jr * kc) * 4;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const ct = c + (<usize>((i0 + ir) * ldc + j0 + jr) << 2);
            micro4x8(kc, ap + <usize>(ir * kc) * 4, bpanel, ct, ldcb, mr, nr, acc, edge);
          }
        }
      }
    }
  }
}

/** dst[r, :] = table[idx[r], :] widened; table (·, cols) bfloat16 at `table`, dst (rows, cols). */
export function gatherRowsBf16(dst: usize, table: usize, idx: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++)
    widenBf16(dst + (<usize>(r * cols) << 2), table + (<usize>ldi(idx, r) * <usize>cols << 1), cols);
}
