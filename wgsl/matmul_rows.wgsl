// C = alpha · op(A) · op(B) + beta · C for few rows M (routing logits, decoding one token, tiny batches).
// Same contract and uniform struct as matmul.wgsl. With M this small a 64×64 tile would be mostly padding, so
// here one 64-thread workgroup owns one output column n: the threads split K between them, each keeps the partial
// dot products of 4 rows in a vec4, and a tree reduction in workgroup memory sums them. Reading a weight row
// (TRANS_B, stored (N, K)) is then one contiguous sweep shared by the whole workgroup.
//
// Legend: M rows, N columns, K reduced dimension, batch independent products (grid z). Workgroup (x, y) folds n
// past the 65535-per-dimension limit: n = wid.x + wid.y · num_workgroups.x.

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

const WG = 64u;
var<workgroup> partial: array<vec4<f32>, 64>;

fn loadA(base: u32, m: u32, k: u32) -> f32 {
  if (m >= dims.M) { return 0.0; }
  if (TRANS_A) { return A[base + k * dims.M + m]; }
  return A[base + m * dims.K + k];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= dims.N) { return; } // uniform per workgroup, so the barriers below stay in uniform control flow
  let b = wid.z;
  let abase = dims.offA + b * dims.strideA;
  let bbase = dims.offB + b * dims.strideB;
  let cbase = dims.offC + b * dims.strideC;
  for (var m0 = 0u; m0 < dims.M; m0 += 4u) {
    var acc = vec4<f32>(0.0);
    for (var k = tid; k < dims.K; k += WG) {
      var bv: f32;
      if (TRANS_B) { bv = B[bbase + n * dims.K + k]; } else { bv = B[bbase + k * dims.N + n]; }
      let av = vec4<f32>(loadA(abase, m0, k), loadA(abase, m0 + 1u, k),
                         loadA(abase, m0 + 2u, k), loadA(abase, m0 + 3u, k));
      acc = fma(av, vec4<f32>(bv), acc);
    }
    partial[tid] = acc;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
      if (tid < s) { partial[tid] += partial[tid + s]; }
      workgroupBarrier();
    }
    if (tid < 4u && m0 + tid < dims.M) {
      let at = cbase + (m0 + tid) * dims.N + n;
      var v = dims.alpha * partial[0][tid];
      if (dims.beta != 0.0) { v += dims.beta * C[at]; }
      C[at] = v;
    }
    workgroupBarrier();
  }
}
