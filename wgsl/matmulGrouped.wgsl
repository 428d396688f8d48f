// matmulGrouped: per-expert products over rows sorted by expert (SMoE, dropless). Rows offsets[g] ≤ r < offsets[g+1]
// use weight block g:  C[r, :] (= or +=) A[r, :] · op(B[g]),
// A (P, K), C (P, N), B (G, N, K) when transB else (G, K, N).
// Tiled like matmul.wgsl (64×64 tile of C, 4×4 register blocks, K step 16). A tile of 64 sorted rows may straddle
// expert boundaries, so the workgroup walks the experts its rows belong to (found by binary search in the
// device-side offsets; usually one or two) and, for each, stages that expert's weights and only that expert's rows
// of A (the others as zeros). No row count ever travels to the host.
struct Dims { P: u32, N: u32, K: u32, G: u32, transB: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
@group(0) @binding(4) var<storage, read> offsets: array<i32>;

var<workgroup> As: array<vec4<f32>, 256>; // (16, 64/4)
var<workgroup> Bs: array<vec4<f32>, 256>; // (16, 64/4)

/** The expert of sorted row r: the largest g with offsets[g] ≤ r (empty experts are skipped over). */
fn group_of(r: u32) -> u32 {
  var lo = 0u;
  var hi = dims.G;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (u32(offsets[mid]) <= r) { lo = mid; } else { hi = mid; }
  }
  return lo;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let m0 = wid.y * 64u;
  let n0 = wid.x * 64u;
  let mLast = min(m0 + 63u, dims.P - 1u);
  let gFirst = group_of(m0);
  let gLast = group_of(mLast);
  var acc: array<vec4<f32>, 4>;
  let kk = tid % 16u;
  let mq = tid / 16u;
  for (var g = gFirst; g <= gLast; g++) {
    let rBegin = u32(offsets[g]);
    let rEnd = u32(offsets[g + 1u]);
    if (rEnd == rBegin) { continue; }
    let bbase = g * dims.N * dims.K;
    for (var k0 = 0u; k0 < dims.K; k0 += 16u) {
      var a = vec4<f32>(0.0);
      let k = k0 + kk;
      for (var i = 0u; i < 4u; i++) {
        let r = m0 + mq * 4u + i;
        if (r >= rBegin && r < rEnd && k < dims.K) { a[i] = A[r * dims.K + k]; }
      }
      As[kk * 16u + mq] = a;
      // B tile: element (k, n) of op(B[g]); walk the stored layout so neighbouring threads read neighbours.
      var nq: u32; var kb: u32;
      if (dims.transB != 0u) { kb = tid % 16u; nq = tid / 16u; } else { nq = tid % 16u; kb = tid / 16u; }
      var bv = vec4<f32>(0.0);
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + nq * 4u + j;
        let kr = k0 + kb;
        if (n < dims.N && kr < dims.K) {
          if (dims.transB != 0u) { bv[j] = B[bbase + n * dims.K + kr]; } else { bv[j] = B[bbase + kr * dims.N + n]; }
        }
      }
      Bs[kb * 16u + nq] = bv;
      workgroupBarrier();
      for (var t = 0u; t < 16u; t++) {
        let av = As[t * 16u + lid.y];
        let b4 = Bs[t * 16u + lid.x];
        acc[0] = fma(vec4<f32>(av.x), b4, acc[0]);
        acc[1] = fma(vec4<f32>(av.y), b4, acc[1]);
        acc[2] = fma(vec4<f32>(av.z), b4, acc[2]);
        acc[3] = fma(vec4<f32>(av.w), b4, acc[3]);
      }
      workgroupBarrier();
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let r = m0 + lid.y * 4u + i;
    if (r >= dims.P) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (n < dims.N) {
        let at = r * dims.N + n;
        if (dims.accumulate != 0u) { C[at] += acc[i][j]; } else { C[at] = acc[i][j]; }
      }
    }
  }
}
