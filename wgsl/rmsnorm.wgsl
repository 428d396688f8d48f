// rmsnorm: rstd (rows) = 1/sqrt(mean_j x² + eps) (saved for backward);  y (rows, d) = x·rstd·w.
// One 64-thread workgroup per row.
struct Dims { rows: u32, d: u32, eps: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; }
  let base = row * dims.d;
  var acc = 0.0;
  for (var j = tid; j < dims.d; j += 64u) { acc += x[base + j] * x[base + j]; }
  let r = inverseSqrt(wg_sum64(tid, acc) / f32(dims.d) + dims.eps);
  if (tid == 0u) { rstd[row] = r; }
  for (var j = tid; j < dims.d; j += 64u) { y[base + j] = x[base + j] * r * w[j]; }
}
