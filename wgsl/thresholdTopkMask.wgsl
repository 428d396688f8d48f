// thresholdTopkMask: mask[r, j] = 1 where x[r, j] ≥ τ_k (the k-th largest value of row r, ties all kept), else 0.
// Without sorting: x[r, j] ≥ τ_k exactly when fewer than k entries of the row are strictly greater than it (if
// x_j < τ_k, the ≥ k entries at or above τ_k all beat it; if x_j ≥ τ_k, only entries above τ_k can, and there are
// fewer than k of those). One thread per entry counts; O(n²) per row, embarrassingly parallel and tie-exact.
struct Dims { rows: u32, n: u32, k: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> mask: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.n) { return; }
  let base = (i / dims.n) * dims.n;
  let v = x[i];
  var greater = 0u;
  for (var j = 0u; j < dims.n; j++) {
    if (x[base + j] > v) { greater++; }
  }
  mask[i] = select(0, 1, greater < dims.k);
}
