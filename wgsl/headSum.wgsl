// headSum: G (T, E) = Σ_h g[t, h, :], g (T, H, E). One thread per (t, i).
struct Dims { T: u32, H: u32, E: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> G: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let ti = flat_id(gid, nwg);
  if (ti >= dims.T * dims.E) { return; }
  let t = ti / dims.E;
  let i = ti % dims.E;
  var acc = 0.0;
  for (var h = 0u; h < dims.H; h++) { acc += g[(t * dims.H + h) * dims.E + i]; }
  G[ti] = acc;
}
