// moeDispatchBackward: dx[t, :] += Σ_s dxs[pos[t·k + s], :] — a gather per token (no atomics needed, because
// pos tells each token where its k rows went).
struct Dims { T: u32, k: u32, d: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> dxs: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.T * dims.d) { return; }
  let t = i / dims.d;
  let c = i % dims.d;
  var acc = 0.0;
  for (var s = 0u; s < dims.k; s++) { acc += dxs[u32(pos[t * dims.k + s]) * dims.d + c]; }
  dx[i] += acc;
}
