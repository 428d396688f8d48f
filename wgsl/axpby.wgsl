// axpby: y[i] = alpha·x[i] + beta·y[i], i < n; with beta = 0 the old y is never read (NaN-safe).
struct Dims { n: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.n) { return; }
  var v = dims.alpha * x[i];
  if (dims.beta != 0.0) { v += dims.beta * y[i]; }
  y[i] = v;
}
