// monetUnifBackward: dg[t,h,i] += scale·(−1/(2·H·E)) / (T·(ḡ[h,i] + eps)). One thread per (h, i): it forms ḡ once
// and then writes its column for every token.
struct Dims { T: u32, H: u32, E: u32, eps: f32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dg: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let hi = flat_id(gid, nwg);
  let HE = dims.H * dims.E;
  if (hi >= HE) { return; }
  var s = 0.0;
  for (var t = 0u; t < dims.T; t++) { s += g[t * HE + hi]; }
  let T = f32(dims.T);
  let c = dims.scale * (-1.0 / (2.0 * f32(HE))) / (T * (s / T + dims.eps));
  for (var t = 0u; t < dims.T; t++) { dg[t * HE + hi] += c; }
}
