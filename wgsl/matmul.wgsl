// C = alpha · op(A) · op(B) + beta · C, batched — the one GEMM every Linear forward and backward goes through.
// Tiled and register-blocked: a 16×16 workgroup computes a 64×64 tile of C, each thread a 4×4 block held in
// registers as four vec4 rows; K advances in steps of 16 through workgroup memory.
//
// Legend: M rows of C, N columns of C, K the reduced dimension, batch independent products (grid z).
// op(A) is (M, K): A is stored (M, K) row-major, or (K, M) when TRANS_A (e.g. dW = dYᵀ·X reads dY as (T, F)).
// op(B) is (K, N): B is stored (K, N), or (N, K) when TRANS_B (a Linear weight (out, in) used as y = x·Wᵀ).
// offA/offB/offC are element offsets of the first matrix, strideA/B/C the element distance between batch items.
// beta = 1 accumulates into C (backward's "+="); beta = 0 overwrites (C's old contents are then never read, so
// NaN garbage in C cannot leak in).

struct Dims {
  M: u32, N: u32, K: u32, batch: u32,
  offA: u32, offB: u32, offC: u32, strideA: u32,
  strideB: u32, strideC: u32, alpha: f32, beta: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

const BM = 64u;
const BN = 64u;
const BK = 16u;

// As[k][m/4] holds 4 consecutive rows of op(A) at depth k; Bs[k][n/4] 4 consecutive columns of op(B).
var<workgroup> As: array<vec4<f32>, 256>; // (BK, BM/4)
var<workgroup> Bs: array<vec4<f32>, 256>; // (BK, BN/4)

fn loadA(b: u32, m: u32, k: u32) -> f32 {
  if (m >= dims.M || k >= dims.K) { return 0.0; }
  let base = dims.offA + b * dims.strideA;
  if (TRANS_A) { return A[base + k * dims.M + m]; }
  return A[base + m * dims.K + k];
}

fn loadB(b: u32, k: u32, n: u32) -> f32 {
  if (k >= dims.K || n >= dims.N) { return 0.0; }
  let base = dims.offB + b * dims.strideB;
  if (TRANS_B) { return B[base + n * dims.K + k]; }
  return B[base + k * dims.N + n];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let b = wid.z;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  var acc: array<vec4<f32>, 4>; // rows m0 + ly*4 + i, columns n0 + lx*4 .. +3
  for (var k0 = 0u; k0 < dims.K; k0 += BK) {
    // Each of the 256 threads stages one vec4 of A and one of B. The walk order follows the stored layout so that
    // neighbouring threads read neighbouring addresses.
    {
      var mq: u32; var kk: u32;
      if (TRANS_A) { mq = tid % 16u; kk = tid / 16u; } else { kk = tid % 16u; mq = tid / 16u; }
      let m = m0 + mq * 4u;
      As[kk * 16u + mq] = vec4<f32>(loadA(b, m, k0 + kk), loadA(b, m + 1u, k0 + kk),
                                    loadA(b, m + 2u, k0 + kk), loadA(b, m + 3u, k0 + kk));
      var nq: u32; var kb: u32;
      if (TRANS_B) { kb = tid % 16u; nq = tid / 16u; } else { nq = tid % 16u; kb = tid / 16u; }
      let n = n0 + nq * 4u;
      Bs[kb * 16u + nq] = vec4<f32>(loadB(b, k0 + kb, n), loadB(b, k0 + kb, n + 1u),
                                    loadB(b, k0 + kb, n + 2u), loadB(b, k0 + kb, n + 3u));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a = As[kk * 16u + lid.y];
      let bv = Bs[kk * 16u + lid.x];
      acc[0] = fma(vec4<f32>(a.x), bv, acc[0]);
      acc[1] = fma(vec4<f32>(a.y), bv, acc[1]);
      acc[2] = fma(vec4<f32>(a.z), bv, acc[2]);
      acc[3] = fma(vec4<f32>(a.w), bv, acc[3]);
    }
    workgroupBarrier();
  }
  let cbase = dims.offC + b * dims.strideC;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    if (m >= dims.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (n < dims.N) {
        let at = cbase + m * dims.N + n;
        var v = dims.alpha * acc[i][j];
        if (dims.beta != 0.0) { v += dims.beta * C[at]; }
        C[at] = v;
      }
    }
  }
}
