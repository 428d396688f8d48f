// batchnorm: y (rows, cols) = (x − mean[c]) / sqrt(variance[c] + eps) · gamma[c] + beta[c].
struct Dims { rows: u32, cols: u32, eps: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> variance: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.cols) { return; }
  let c = i % dims.cols;
  y[i] = (x[i] - mean[c]) * inverseSqrt(variance[c] + dims.eps) * gamma[c] + beta[c];
}
