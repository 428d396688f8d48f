// maskScale: y[i] = x[i]·(alpha + (1 − alpha)·mask[i]) — the TopK activation's α-blend (and its own backward).
// y may alias x; the binding is read_write for both roles then, so x is read through y when they alias.
struct Dims { n: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < dims.n) { y[i] = x[i] * (dims.alpha + (1.0 - dims.alpha) * f32(mask[i])); }
}

// The aliased form (y is x): one read_write binding.
@compute @workgroup_size(256)
fn inplace(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < dims.n) { y[i] = y[i] * (dims.alpha + (1.0 - dims.alpha) * f32(mask[i])); }
}
