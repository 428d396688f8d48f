// moeCombine: y[t, :] += Σ_s w[t·k + s]·ys[pos[t·k + s], :] — weight and sum each token's k expert outputs.
// ys (P, d), w (T, k), y (T, d).
struct Dims { T: u32, k: u32, d: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> ys: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.T * dims.d) { return; }
  let t = i / dims.d;
  let c = i % dims.d;
  var acc = 0.0;
  for (var s = 0u; s < dims.k; s++) {
    let p = t * dims.k + s;
    acc = fma(w[p], ys[u32(pos[p]) * dims.d + c], acc);
  }
  y[i] += acc;
}
