// colSum: out (cols) += Σ_r x[r, c] — a bias gradient. One thread per column walks the rows; neighbouring threads
// read neighbouring columns, so every row is one coalesced sweep.
struct Dims { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> outv: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = flat_id(gid, nwg);
  if (c >= dims.cols) { return; }
  var acc = 0.0;
  for (var r = 0u; r < dims.rows; r++) { acc += x[r * dims.cols + c]; }
  outv[c] += acc;
}
