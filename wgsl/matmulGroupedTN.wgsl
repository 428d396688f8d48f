// matmulGroupedTN: the grouped weight gradient dB[g] (N, K) += Σ_{r in group g} dC[r, :]ᵀ ⊗ A[r, :].
// One thread per (g, n, k) walks its group's rows: a plain sum, no atomics, deterministic.
struct Dims { P: u32, N: u32, K: u32, G: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dB: array<f32>;
@group(0) @binding(2) var<storage, read> dC: array<f32>;
@group(0) @binding(3) var<storage, read> A: array<f32>;
@group(0) @binding(4) var<storage, read> offsets: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.G * dims.N * dims.K) { return; }
  let g = i / (dims.N * dims.K);
  let n = (i / dims.K) % dims.N;
  let k = i % dims.K;
  var acc = 0.0;
  for (var r = u32(offsets[g]); r < u32(offsets[g + 1u]); r++) {
    acc = fma(dC[r * dims.N + n], A[r * dims.K + k], acc);
  }
  dB[i] += acc;
}
