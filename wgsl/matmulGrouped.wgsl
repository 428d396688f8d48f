// matmulGrouped: per-expert products over rows sorted by expert (SMoE, dropless). Rows offsets[g] ≤ r < offsets[g+1]
// use weight block g:  C[r, :] (= or +=) A[r, :] · op(B[g]),  A (P, K), C (P, N), B (G, N, K) when TRANS_B else (G, K, N).
// One thread per output element; the row's group is found by binary search in the device-side offsets, so no
// row count ever travels to the host.
struct Dims { P: u32, N: u32, K: u32, G: u32, transB: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read> offsets: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.P * dims.N) { return; }
  let r = i / dims.N;
  let n = i % dims.N;
  // largest g with offsets[g] ≤ r
  var lo = 0u;
  var hi = dims.G;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (u32(offsets[mid]) <= r) { lo = mid; } else { hi = mid; }
  }
  let g = lo;
  let bbase = g * dims.N * dims.K;
  var acc = 0.0;
  for (var k = 0u; k < dims.K; k++) {
    var b: f32;
    if (dims.transB != 0u) { b = B[bbase + n * dims.K + k]; } else { b = B[bbase + k * dims.N + n]; }
    acc = fma(A[r * dims.K + k], b, acc);
  }
  if (dims.accumulate != 0u) { C[i] += acc; } else { C[i] = acc; }
}
