// C = alpha · op(A) · op(B) + beta · C, batched — the large-matrix variant of matmul.wgsl (same contract, same
// uniform struct). A 16×16 workgroup computes a 128×128 tile of C; each thread holds an 8×8 block in registers as
// 16 vec4s, split into four 4×4 quadrants 64 rows/columns apart so that neighbouring threads read neighbouring
// vec4s of workgroup memory. K advances 8 at a time. Twice the work per thread of matmul.wgsl for the same loads
// from workgroup memory: this is the variant for big products (the 4096³ benchmark).
// CHECK_BOUNDS = false drops the edge tests when M, N are multiples of 128 and K of BK (chosen on the host).
// BK (8 or 16) is the K step per barrier pair; bench/gpu-job.ts times both.
//
// Legend: M rows of C, N columns, K the reduced dimension, batch independent products (grid z); op(A) (M, K) is A
// stored (M, K), or (K, M) when TRANS_A; op(B) (K, N) is B stored (K, N), or (N, K) when TRANS_B.

struct Dims {
  M: u32, N: u32, K: u32, batch: u32,
  offA: u32, offB: u32, offC: u32, strideA: u32,
  strideB: u32, strideC: u32, alpha: f32, beta: f32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override CHECK_BOUNDS: bool = true;
override BK: u32 = 8u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;

var<workgroup> As: array<vec4<f32>, BK * 32u>; // (BK, 128/4): 4 consecutive rows of op(A) at depth k
var<workgroup> Bs: array<vec4<f32>, BK * 32u>; // (BK, 128/4): 4 consecutive columns of op(B) at depth k

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (CHECK_BOUNDS && (m >= dims.M || k >= dims.K)) { return 0.0; }
  if (TRANS_A) { return A[base + k * dims.M + m]; }
  return A[base + m * dims.K + k];
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (CHECK_BOUNDS && (k >= dims.K || n >= dims.N)) { return 0.0; }
  if (TRANS_B) { return B[base + n * dims.K + k]; }
  return B[base + k * dims.N + n];
}

fn store(cbase: u32, m: u32, n: u32, v: f32) {
  if (CHECK_BOUNDS && (m >= dims.M || n >= dims.N)) { return; }
  let at = cbase + m * dims.N + n;
  var r = dims.alpha * v;
  if (dims.beta != 0.0) { r += dims.beta * C[at]; }
  C[at] = r;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let b = wid.z;
  let m0 = wid.y * 128u;
  let n0 = wid.x * 128u;
  let abase = dims.offA + b * dims.strideA;
  let bbase = dims.offB + b * dims.strideB;
  // acc[q*4 + i]: quadrant q = 2·(row half) + (column half), row i of the thread's 4×4 block in that quadrant.
  var acc: array<vec4<f32>, 16>;
  for (var k0 = 0u; k0 < dims.K; k0 += BK) {
    // Staging: the 256 threads fill BK·32 vec4 slots of As and of Bs (BK/8 each), walking the stored layout so
    // that neighbouring threads read neighbouring addresses.
    for (var slot = tid; slot < BK * 32u; slot += 256u) {
      var mq: u32; var ka: u32;
      if (TRANS_A) { mq = slot % 32u; ka = slot / 32u; } else { ka = slot % BK; mq = slot / BK; }
      let m = m0 + mq * 4u;
      let kA = k0 + ka;
      As[ka * 32u + mq] = vec4<f32>(loadA(abase, m, kA), loadA(abase, m + 1u, kA),
                                    loadA(abase, m + 2u, kA), loadA(abase, m + 3u, kA));
      var nq: u32; var kb: u32;
      if (TRANS_B) { kb = slot % BK; nq = slot / BK; } else { nq = slot % 32u; kb = slot / 32u; }
      let n = n0 + nq * 4u;
      let kB = k0 + kb;
      Bs[kb * 32u + nq] = vec4<f32>(loadB(bbase, kB, n), loadB(bbase, kB, n + 1u),
                                    loadB(bbase, kB, n + 2u), loadB(bbase, kB, n + 3u));
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a0 = As[kk * 32u + lid.y];
      let a1 = As[kk * 32u + 16u + lid.y];
      let b0 = Bs[kk * 32u + lid.x];
      let b1 = Bs[kk * 32u + 16u + lid.x];
      acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
      acc[1] = fma(vec4<f32>(a0.y), b0, acc[1]);
      acc[2] = fma(vec4<f32>(a0.z), b0, acc[2]);
      acc[3] = fma(vec4<f32>(a0.w), b0, acc[3]);
      acc[4] = fma(vec4<f32>(a0.x), b1, acc[4]);
      acc[5] = fma(vec4<f32>(a0.y), b1, acc[5]);
      acc[6] = fma(vec4<f32>(a0.z), b1, acc[6]);
      acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
      acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
      acc[9] = fma(vec4<f32>(a1.y), b0, acc[9]);
      acc[10] = fma(vec4<f32>(a1.z), b0, acc[10]);
      acc[11] = fma(vec4<f32>(a1.w), b0, acc[11]);
      acc[12] = fma(vec4<f32>(a1.x), b1, acc[12]);
      acc[13] = fma(vec4<f32>(a1.y), b1, acc[13]);
      acc[14] = fma(vec4<f32>(a1.z), b1, acc[14]);
      acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
    }
    workgroupBarrier();
  }
  let cbase = dims.offC + b * dims.strideC;
  for (var q = 0u; q < 4u; q++) {
    let mrow = m0 + (q / 2u) * 64u + lid.y * 4u;
    let ncol = n0 + (q % 2u) * 64u + lid.x * 4u;
    for (var i = 0u; i < 4u; i++) {
      let v = acc[q * 4u + i];
      store(cbase, mrow + i, ncol, v.x);
      store(cbase, mrow + i, ncol + 1u, v.y);
      store(cbase, mrow + i, ncol + 2u, v.z);
      store(cbase, mrow + i, ncol + 3u, v.w);
    }
  }
}
