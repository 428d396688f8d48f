// Matrix products: C (M, N) (=, or +=) op(A) · op(B), every transpose variant, float32, WebAssembly SIMD.
//
// Dimension legend: M rows of C, N columns of C, K the contracted dimension; MR×NR the register tile (4×8),
// MC×KC the packed block of A (L2), KC×NC the packed block of B (L3).
//
// The GotoBLAS/BLIS structure, kept small:
//   for each NC-wide block of columns, for each KC-deep slice of K:
//     pack B's KC×NC block into NR-wide panels (Bp), zero-padded at the right edge;
//     for each MC-tall block of rows:
//       pack A's MC×KC block into MR-tall panels (Ap), zero-padded at the bottom edge;
//       for every NR panel of Bp (stays in L1), for every MR panel of Ap (streams from L2): the 4×8 micro-kernel.
// Transposes are absorbed by the packing (element (i, p) of op(A) sits at a + i·rsA + p·csA), so one micro-kernel
// serves NN, NT (Linear forward), TN (weight gradient) and TT. The micro-kernel keeps a 4×8 tile of C in eight
// f32x4 registers: per k step it loads 8 floats of B, splats 4 floats of A and does 8 multiply-adds — relaxed
// f32x4.relaxed_madd (one fused instruction) in the relaxed-SIMD build, mul + add in the plain SIMD build.

// @ts-ignore: decorator
@inline export const MR: i32 = 4;
// @ts-ignore: decorator
@inline export const NR: i32 = 8;
// @ts-ignore: decorator
@inline export const KC: i32 = 256;
// @ts-ignore: decorator
@inline export const MC: i32 = 96;
// @ts-ignore: decorator
@inline export const NC: i32 = 2048;

/**
 * Floats of scratch `gemm` needs for an N-column product: the edge tile (MR·NR), Ap (MC·KC) and Bp (KC·NC, at
 * most). Scratch, not static memory: with threads, every thread runs gemm at once, each in its own scratch.
 */
export function gemmScratchFloats(N: i32): i32 {
  const nc = min(NC, ((N + NR - 1) / NR) * NR);
  return MR * NR + MC * KC + KC * nc;
}

/** a·b + c: one fused instruction where relaxed SIMD is available. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * The micro-kernel: C[0..mr, 0..nr] (=, or += when accumulate) Σ_p Ap[p, 0..4] ⊗ Bp[p, 0..8].
 * ap: kc×4 packed panel of A; bp: kc×8 packed panel of B; c: top-left of the C tile, ldc its row stride in bytes;
 * edge: a 4×8 tile of scratch for the edges (rows or columns beyond M or N): the kernel stores there, then copies
 * the valid part.
 */
// @ts-ignore: decorator
@inline export function micro4x8(kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, mr: i32, nr: i32,
  accumulate: bool, edge: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  for (let p = 0; p < kc; p++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load32_splat(ap);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(ap, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(ap, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(ap, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    ap += 16;
    bp += 32;
  }
  if (mr == MR && nr == NR) {
    let r = c;
    if (accumulate) {
      v128.store(r, f32x4.add(v128.load(r), c00)); v128.store(r, f32x4.add(v128.load(r, 16), c01), 16); r += ldc;
      v128.store(r, f32x4.add(v128.load(r), c10)); v128.store(r, f32x4.add(v128.load(r, 16), c11), 16); r += ldc;
      v128.store(r, f32x4.add(v128.load(r), c20)); v128.store(r, f32x4.add(v128.load(r, 16), c21), 16); r += ldc;
      v128.store(r, f32x4.add(v128.load(r), c30)); v128.store(r, f32x4.add(v128.load(r, 16), c31), 16);
    } else {
      v128.store(r, c00); v128.store(r, c01, 16); r += ldc;
      v128.store(r, c10); v128.store(r, c11, 16); r += ldc;
      v128.store(r, c20); v128.store(r, c21, 16); r += ldc;
      v128.store(r, c30); v128.store(r, c31, 16);
    }
    return;
  }
  // edge tile: spill the registers, then copy the valid mr×nr part
  v128.store(edge, c00); v128.store(edge, c01, 16);
  v128.store(edge, c10, 32); v128.store(edge, c11, 48);
  v128.store(edge, c20, 64); v128.store(edge, c21, 80);
  v128.store(edge, c30, 96); v128.store(edge, c31, 112);
  for (let i = 0; i < mr; i++) {
    const row = c + <usize>i * ldc;
    for (let j = 0; j < nr; j++) {
      const v = load<f32>(edge + <usize>((i * NR + j) << 2));
      const dst = row + (<usize>j << 2);
      store<f32>(dst, accumulate ? load<f32>(dst) + v : v);
    }
  }
}

/**
 * Stores the transpose of the 4×4 block whose rows are r0..r3: column c (= r0[c], r1[c], r2[c], r3[c]) at
 * dst + c·stride bytes.
 */
// @ts-ignore: decorator
@inline export function transpose4(dst: usize, stride: usize, r0: v128, r1: v128, r2: v128, r3: v128): void {
  const t0 = i32x4.shuffle(r0, r1, 0, 4, 1, 5), t1 = i32x4.shuffle(r0, r1, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(r2, r3, 0, 4, 1, 5), t3 = i32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, i64x2.shuffle(t0, t2, 0, 2));
  v128.store(dst + stride, i64x2.shuffle(t0, t2, 1, 3));
  v128.store(dst + 2 * stride, i64x2.shuffle(t1, t3, 0, 2));
  v128.store(dst + 3 * stride, i64x2.shuffle(t1, t3, 1, 3));
}

/** Pack op(A)[i0..i0+mc, p0..p0+kc] into MR-tall panels: Ap[panel][p][ii], rows beyond mc zero. */
export function packA(ap: usize, a: usize, rsA: i32, csA: i32, i0: i32, mc: i32, p0: i32, kc: i32): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    const panel = ap + <usize>(ir * kc) * 4;
    if (rows == MR && rsA == 1) {
      // op(A) = Aᵀ storage: the 4 rows of a panel are contiguous for each p
      for (let p = 0; p < kc; p++) {
        v128.store(panel + (<usize>p << 4), v128.load(a + (<usize>((i0 + ir) + (p0 + p) * csA) << 2)));
      }
    } else if (rows == MR && csA == 1) {
      // op(A) = A row-major (a Linear layer's input): transpose 4×4 blocks in registers
      const r0 = a + (<usize>((i0 + ir) * rsA + p0) << 2);
      const rs = <usize>rsA << 2;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const src = r0 + (<usize>p << 2);
        transpose4(panel + (<usize>p << 4), 16, v128.load(src), v128.load(src + rs), v128.load(src + 2 * rs),
          v128.load(src + 3 * rs));
      }
      for (; p < kc; p++) {
        const src = r0 + (<usize>p << 2);
        const dst = panel + (<usize>p << 4);
        store<f32>(dst, load<f32>(src));
        store<f32>(dst, load<f32>(src + rs), 4);
        store<f32>(dst, load<f32>(src + 2 * rs), 8);
        store<f32>(dst, load<f32>(src + 3 * rs), 12);
      }
    } else if (rows == MR) {
      const r0 = a + (<usize>((i0 + ir) * rsA + p0 * csA) << 2);
      const rs = <usize>rsA << 2, cs = <usize>csA << 2;
      for (let p = 0; p < kc; p++) {
        const src = r0 + <usize>p * cs;
        const dst = panel + (<usize>p << 4);
        store<f32>(dst, load<f32>(src));
        store<f32>(dst, load<f32>(src + rs), 4);
        store<f32>(dst, load<f32>(src + 2 * rs), 8);
        store<f32>(dst, load<f32>(src + 3 * rs), 12);
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let ii = 0; ii < MR; ii++) {
          const v: f32 = ii < rows ? load<f32>(a + (<usize>((i0 + ir + ii) * rsA + (p0 + p) * csA) << 2)) : 0;
          store<f32>(panel + (<usize>(p * MR + ii) << 2), v);
        }
      }
    }
  }
}

/** Pack op(B)[p0..p0+kc, j0..j0+nc] into NR-wide panels: Bp[panel][p][jj], columns beyond nc zero. */
function packB(bp: usize, b: usize, rsB: i32, csB: i32, p0: i32, kc: i32, j0: i32, nc: i32): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const panel = bp + <usize>(jr * kc) * 4;
    if (cols == NR && csB == 1) {
      for (let p = 0; p < kc; p++) {
        const src = b + (<usize>((p0 + p) * rsB + j0 + jr) << 2);
        const dst = panel + (<usize>p << 5);
        v128.store(dst, v128.load(src));
        v128.store(dst, v128.load(src, 16), 16);
      }
    } else if (cols == NR && rsB == 1) {
      // op(B) = Bᵀ storage (a Linear weight (N, K)): 8 rows of B, transposed 4×4 blocks at a time
      const cs = <usize>csB << 2;
      const c0 = b + (<usize>(p0 + (j0 + jr) * csB) << 2);
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const src = c0 + (<usize>p << 2);
        const dst = panel + (<usize>p << 5);
        transpose4(dst, 32, v128.load(src), v128.load(src + cs), v128.load(src + 2 * cs), v128.load(src + 3 * cs));
        const s4 = src + 4 * cs;
        transpose4(dst + 16, 32, v128.load(s4), v128.load(s4 + cs), v128.load(s4 + 2 * cs), v128.load(s4 + 3 * cs));
      }
      for (; p < kc; p++) {
        const src = c0 + (<usize>p << 2);
        const dst = panel + (<usize>p << 5);
        for (let jj = 0; jj < NR; jj++) store<f32>(dst + (<usize>jj << 2), load<f32>(src + <usize>jj * cs));
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let jj = 0; jj < NR; jj++) {
          const v: f32 = jj < cols ? load<f32>(b + (<usize>((p0 + p) * rsB + (j0 + jr + jj) * csB) << 2)) : 0;
          store<f32>(panel + (<usize>(p * NR + jj) << 2), v);
        }
      }
    }
  }
}

/**
 * Causal products of attention (rows and columns index positions of one S×S mask, row i attends to j ≤ i): what a
 * product may skip. MASK_NONE: nothing. MASK_OUT_LOWER: only C[i, j] with j ≤ i is wanted; tiles lying wholly above
 * the diagonal are not computed (their C is left as it was). MASK_K_UPTO: op(A)[i, p] = 0 for p > i (P·V, dS·K):
 * row i sums over p ≤ i only. MASK_K_FROM: op(A)[i, p] = 0 for p < i (Pᵀ·dO, dSᵀ·Q): row i sums over p ≥ i only.
 * The skipped terms are exact zeros, so what is computed equals the full product there.
 */
export const MASK_NONE = 0, MASK_OUT_LOWER = 1, MASK_K_UPTO = 2, MASK_K_FROM = 3;

/**
 * General strided product: C[i, j] (=, or +=) Σ_p A(i, p)·B(p, j), A(i, p) at a + (i·rsA + p·csA)·4,
 * B(p, j) at b + (p·rsB + j·csB)·4, C[i, j] at c + (i·ldc + j)·4. scratch: gemmScratchFloats(N) floats.
 */
export function gemm(M: i32, N: i32, K: i32, a: usize, rsA: i32, csA: i32, b: usize, rsB: i32, csB: i32,
  c: usize, ldc: i32, accumulate: bool, scratch: usize): void {
  gemmMasked(M, N, K, a, rsA, csA, b, rsB, csB, c, ldc, accumulate, scratch, MASK_NONE);
}

/** gemm with one of the causal masks above (`mask`); A and B are packed once, only the needed tiles computed. */
export function gemmMasked(M: i32, N: i32, K: i32, a: usize, rsA: i32, csA: i32, b: usize, rsB: i32, csB: i32,
  c: usize, ldc: i32, accumulate: bool, scratch: usize, mask: i32): void {
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
      packB(bp, b, rsB, csB, p0, kc, j0, nc);
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = min(MC, M - i0);
        packA(ap, a, rsA, csA, i0, mc, p0, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bpanel = bp + <usize>(jr * kc) * 4;
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = min(MR, mc - ir);
            const r = i0 + ir; // the tile's first row
            if (mask == MASK_OUT_LOWER && j0 + jr > r + mr - 1) continue;
            // the part [ks, ke) of this k block that the tile's rows need (all of it without a mask)
            const ks = mask == MASK_K_FROM ? min(kc, max(0, r - p0)) : 0;
            const ke = mask == MASK_K_UPTO ? min(kc, max(0, r + mr - p0)) : kc;
            const ct = c + (<usize>(r * ldc + j0 + jr) << 2);
            const aPanel = ap + <usize>(ir * kc) * 4 + (<usize>ks << 4);
            micro4x8(max(0, ke - ks), aPanel, bpanel + (<usize>ks << 5), ct, ldcb, mr, nr, acc, edge);
          }
        }
      }
    }
  }
}

/**
 * Grouped rows: C[r] (=, or +=) A[r]·op(B[g]) for offsets[g] ≤ r < offsets[g+1]; B (G, N, K) if transB else
 * (G, K, N). Only the columns n0 ≤ j < n1 of C are computed (the loader splits N between threads; every column is
 * computed the same way whatever the split).
 */
export function matmulGrouped(c: usize, a: usize, b: usize, offsets: usize, P: i32, N: i32, K: i32, G: i32,
  transB: bool, accumulate: bool, n0: i32, n1: i32, scratch: usize): void {
  for (let g = 0; g < G; g++) {
    const r0 = load<i32>(offsets + (<usize>g << 2));
    const r1 = load<i32>(offsets + (<usize>(g + 1) << 2));
    if (r1 <= r0) continue;
    // column j of op(B[g]) starts at bg + j·K (transB: rows of (N, K)) or bg + j (columns of (K, N))
    const bg = b + (<usize>(g * N * K + n0 * (transB ? K : 1)) << 2);
    gemm(r1 - r0, n1 - n0, K, a + (<usize>(r0 * K) << 2), K, 1, bg, transB ? 1 : N, transB ? K : 1,
      c + (<usize>(r0 * N + n0) << 2), N, accumulate, scratch);
  }
}

/**
 * dB[g] (N, K) += Σ_{r in group g} dC[r]ᵀ ⊗ A[r];  dC (P, N), A (P, K). Only the rows n0 ≤ j < n1 of each dB[g]
 * are computed (the loader splits N between threads).
 */
export function matmulGroupedTN(db: usize, dc: usize, a: usize, offsets: usize, P: i32, N: i32, K: i32, G: i32, n0: i32,
  n1: i32, scratch: usize): void {
  for (let g = 0; g < G; g++) {
    const r0 = load<i32>(offsets + (<usize>g << 2));
    const r1 = load<i32>(offsets + (<usize>(g + 1) << 2));
    if (r1 <= r0) continue;
    // C' = dB[g] (N × K), A'(i=j, p=r) = dC[r, j], B'(p=r, j=k) = A[r, k]
    gemm(n1 - n0, K, r1 - r0, dc + (<usize>(r0 * N + n0) << 2), 1, N, a + (<usize>(r0 * K) << 2), K, 1,
      db + (<usize>(g * N * K + n0 * K) << 2), K, true, scratch);
  }
}
