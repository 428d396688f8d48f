// A scalar (no SIMD) float32 matmul, built on its own into asm/build/matmul-scalar.wasm for the benchmarks only
// (bench/matmul.ts). It is NOT part of the backend: the backend's matmul is asm/matmul.ts (packed, f32x4).
//
// Why it exists: the benchmark table wants a row that isolates what WebAssembly SIMD buys. This kernel is the same
// i-k-j loop as the plain-JavaScript baseline in the benchmark, compiled by AssemblyScript without the SIMD feature
// (scripts/build-asm.mjs builds it with no --enable flags), so
//   plain JS  →  AssemblyScript scalar   is the runtime/compiler difference for one and the same loop, and
//   AssemblyScript scalar  →  SIMD        is what f32x4 lanes plus packing and register blocking add.
//
// Dimension legend: M rows of C and A, N columns of C and B, K the reduction length.

/** First free byte after static data: the benchmark places its three matrices from here on. */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * C (M, N) = A (M, K) · B (K, N), all row-major float32 at byte addresses c, a, b.
 * i-k-j order: the innermost loop streams one row of B and one row of C with unit stride.
 */
export function matmulScalar(c: usize, a: usize, b: usize, M: i32, N: i32, K: i32): void {
  memory.fill(c, 0, <usize>M * <usize>N * 4);
  for (let i = 0; i < M; i++) {
    const cRow = c + (<usize>i * <usize>N << 2); // C[i, :]
    const aRow = a + (<usize>i * <usize>K << 2); // A[i, :]
    for (let p = 0; p < K; p++) {
      const aip = load<f32>(aRow + (<usize>p << 2)); // A[i, p]
      const bRow = b + (<usize>p * <usize>N << 2); // B[p, :]
      for (let j = 0; j < N; j++) {
        const off = <usize>j << 2;
        store<f32>(cRow + off, load<f32>(cRow + off) + aip * load<f32>(bRow + off));
      }
    }
  }
}
