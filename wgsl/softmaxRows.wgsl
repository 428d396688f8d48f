// softmaxRows: y (rows, n) = softmax of each row of x, max-subtracted. One 64-thread workgroup per row: strided
// partial max and sum, tree reductions in workgroup memory. Row = wid.x + wid.y · num_workgroups.x.
struct Dims { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; }
  let base = row * dims.n;
  var mx = -3.4028234e38;
  for (var j = tid; j < dims.n; j += 64u) { mx = max(mx, x[base + j]); }
  mx = wg_max64(tid, mx);
  var sum = 0.0;
  for (var j = tid; j < dims.n; j += 64u) { sum += exp(x[base + j] - mx); }
  let inv = 1.0 / wg_sum64(tid, sum);
  for (var j = tid; j < dims.n; j += 64u) { y[base + j] = exp(x[base + j] - mx) * inv; }
}
