// rmsnormBackward, from y = x·rstd·w with rstd = (mean x² + eps)^(-1/2):
//   dx[r, j] += rstd·w_j·dy_j − x_j·rstd³/d · Σ_i dy_i·w_i·x_i        (entry main: one workgroup per row)
//   dw[j]    += Σ_r dy[r, j]·x[r, j]·rstd[r]                            (entry dweight: one thread per column)
struct Dims { rows: u32, d: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read> rstd: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; }
  let base = row * dims.d;
  var acc = 0.0;
  for (var j = tid; j < dims.d; j += 64u) { acc += dy[base + j] * w[j] * x[base + j]; }
  let r = rstd[row];
  let c = wg_sum64(tid, acc) * r * r * r / f32(dims.d);
  for (var j = tid; j < dims.d; j += 64u) { dx[base + j] += r * w[j] * dy[base + j] - x[base + j] * c; }
}

@compute @workgroup_size(256)
fn dweight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j = flat_id(gid, nwg);
  if (j >= dims.d) { return; }
  var acc = 0.0;
  for (var r = 0u; r < dims.rows; r++) { acc += dy[r * dims.d + j] * x[r * dims.d + j] * rstd[r]; }
  dw[j] += acc;
}
