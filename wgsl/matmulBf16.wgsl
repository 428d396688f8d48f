// matmulBf16: C (M, N) (=, or += when accumulate) A (M, K) · Bᵀ with B (N, K) a Linear weight stored as bfloat16,
// two per 32-bit word (element e in the low half of word e / 2 when e is even, the high half when odd). WGSL has
// no bfloat16 type: each element is unpacked from its u32 (a shift or a mask, then bitcast — exact, bfloat16 is the
// upper half of a float32), so the weights stay 16-bit in GPU memory and are never written out as float32.
//
// Legend: M rows (tokens), N columns (output features), K reduced dimension (input features).
// Two entry points, as matmul.ts picks among the float32 GEMMs:
//   rows   M ≤ 16 (decoding one token): one 64-thread workgroup per output column n splits K; with K even a
//          thread reads whole words (two weights) of the row; a tree reduction in workgroup memory sums the parts.
//   tiles  larger M: 64×64 tiles of C, 4×4 per thread, K in steps of 16 through workgroup memory (matmul.wgsl's
//          layout with TRANS_B), B unpacked as it is staged.

struct Dims { M: u32, N: u32, K: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<u32>;

/** Element e of B as float32. */
fn bf16(e: u32) -> f32 {
  let w = B[e >> 1u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u));
}

fn loadA(m: u32, k: u32) -> f32 {
  if (m >= dims.M || k >= dims.K) { return 0.0; }
  return A[m * dims.K + k];
}

fn loadA4(m0: u32, k: u32) -> vec4<f32> {
  return vec4<f32>(loadA(m0, k), loadA(m0 + 1u, k), loadA(m0 + 2u, k), loadA(m0 + 3u, k));
}

fn put(m: u32, n: u32, v: f32) {
  let at = m * dims.N + n;
  if (dims.accumulate != 0u) { C[at] += v; } else { C[at] = v; }
}

var<workgroup> partial: array<vec4<f32>, 64>;

@compute @workgroup_size(64)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let n = wid.x + wid.y * nwg.x;
  if (n >= dims.N) { return; } // uniform per workgroup, so the barriers below stay in uniform control flow
  for (var m0 = 0u; m0 < dims.M; m0 += 4u) {
    var acc = vec4<f32>(0.0);
    if ((dims.K & 1u) == 0u) {
      let row = n * (dims.K >> 1u); // the row's first word
      for (var w = tid; w < (dims.K >> 1u); w += 64u) {
        let word = B[row + w];
        acc = fma(loadA4(m0, 2u * w), vec4<f32>(bitcast<f32>(word << 16u)), acc);
        acc = fma(loadA4(m0, 2u * w + 1u), vec4<f32>(bitcast<f32>(word & 0xffff0000u)), acc);
      }
    } else {
      for (var k = tid; k < dims.K; k += 64u) {
        acc = fma(loadA4(m0, k), vec4<f32>(bf16(n * dims.K + k)), acc);
      }
    }
    partial[tid] = acc;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
      if (tid < s) { partial[tid] += partial[tid + s]; }
      workgroupBarrier();
    }
    if (tid < 4u && m0 + tid < dims.M) { put(m0 + tid, n, partial[0][tid]); }
    workgroupBarrier();
  }
}

// As[k][m/4]: 4 consecutive rows of A at depth k; Bs[k][n/4]: 4 consecutive columns of Bᵀ (rows of B).
var<workgroup> As: array<vec4<f32>, 256>; // (16, 16)
var<workgroup> Bs: array<vec4<f32>, 256>;

fn loadB(k: u32, n: u32) -> f32 {
  if (k >= dims.K || n >= dims.N) { return 0.0; }
  return bf16(n * dims.K + k);
}

@compute @workgroup_size(16, 16)
fn tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
         @builtin(local_invocation_index) tid: u32) {
  let m0 = wid.y * 64u;
  let n0 = wid.x * 64u;
  var acc: array<vec4<f32>, 4>; // rows m0 + ly·4 + i, columns n0 + lx·4 .. + 3
  for (var k0 = 0u; k0 < dims.K; k0 += 16u) {
    // neighbouring threads read neighbouring k: both A and B are stored with k fastest
    let kk = tid % 16u;
    let q = tid / 16u;
    let m = m0 + q * 4u;
    As[kk * 16u + q] = loadA4(m, k0 + kk);
    let n = n0 + q * 4u;
    Bs[kk * 16u + q] = vec4<f32>(loadB(k0 + kk, n), loadB(k0 + kk, n + 1u), loadB(k0 + kk, n + 2u),
                                 loadB(k0 + kk, n + 3u));
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      let a = As[k * 16u + lid.y];
      let bv = Bs[k * 16u + lid.x];
      acc[0] = fma(vec4<f32>(a.x), bv, acc[0]);
      acc[1] = fma(vec4<f32>(a.y), bv, acc[1]);
      acc[2] = fma(vec4<f32>(a.z), bv, acc[2]);
      acc[3] = fma(vec4<f32>(a.w), bv, acc[3]);
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + lid.y * 4u + i;
    if (m >= dims.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + lid.x * 4u + j;
      if (n < dims.N) { put(m, n, acc[i][j]); }
    }
  }
}
