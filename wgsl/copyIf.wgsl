// copyIf: dst[i] = src[i], i < n, when cond[at] ≠ 0; otherwise dst is left alone. The training engine restores the
// BatchNorm running statistics of a step that stepGuard skipped with it, without reading the skip flag back.
struct Dims { n: u32, at: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> cond: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.n || cond[dims.at] == 0.0) { return; }
  dst[i] = src[i];
}
