// activation: y[i] = f(x[i]), i < n; f by code (common.wgsl: relu, relu2, gelu (erf), silu).
struct Dims { n: u32, kind: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < dims.n) { y[i] = act_f(dims.kind, x[i]); }
}
