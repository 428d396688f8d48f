// topkRowsBackward: dx[r, idx[r, s]] += dval[r, s] — each selected value's gradient goes back to its column.
// The k indices of a row are distinct, so one thread per (r, s) never collides with another.
struct Dims { rows: u32, n: u32, k: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> dval: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.k) { return; }
  let r = i / dims.k;
  dx[r * dims.n + u32(idx[i])] += dval[i];
}
