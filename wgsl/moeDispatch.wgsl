// moeDispatch: xs[r, :] = x[order[r] div k, :] — gather each sorted (token, slot) pair's token row.
// x (T, d), xs (P, d). One thread per element.
struct Dims { P: u32, k: u32, d: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> xs: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> order: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.P * dims.d) { return; }
  let r = i / dims.d;
  let t = u32(order[r]) / dims.k;
  xs[i] = x[t * dims.d + i % dims.d];
}
