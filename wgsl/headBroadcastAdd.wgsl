// headBroadcastAdd: dg[t, h, i] += dG[t, i] for every head h (the backward of headSum). One thread per (t, h, i).
struct Dims { T: u32, H: u32, E: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dg: array<f32>;
@group(0) @binding(2) var<storage, read> dG: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let thi = flat_id(gid, nwg);
  if (thi >= dims.T * dims.H * dims.E) { return; }
  let t = thi / (dims.H * dims.E);
  let i = thi % dims.E;
  dg[thi] += dG[t * dims.E + i];
}
