// monetAmbBackward: dg[t,h,i*] += scale·(−1/(2·H·T)) at i* = argmax_i g[t,h,i] (first index on ties).
// One thread per (t, h).
struct Dims { T: u32, H: u32, E: u32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dg: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_id(gid, nwg);
  if (row >= dims.T * dims.H) { return; }
  var best = 0u;
  for (var i = 1u; i < dims.E; i++) {
    if (g[row * dims.E + i] > g[row * dims.E + best]) { best = i; }
  }
  dg[row * dims.E + best] += dims.scale * (-1.0 / (2.0 * f32(dims.H) * f32(dims.T)));
}
