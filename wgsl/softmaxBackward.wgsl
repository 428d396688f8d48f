// softmaxBackward: dx[r, j] += y[r, j]·(dy[r, j] − Σ_j' y[r, j']·dy[r, j']). One 64-thread workgroup per row.
struct Dims { rows: u32, n: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.rows) { return; }
  let base = row * dims.n;
  var acc = 0.0;
  for (var j = tid; j < dims.n; j += 64u) { acc += y[base + j] * dy[base + j]; }
  let dot = wg_sum64(tid, acc);
  for (var j = tid; j < dims.n; j += 64u) { dx[base + j] += y[base + j] * (dy[base + j] - dot); }
}
