// runningStatsUpdate (PyTorch BatchNorm, in place): runMean = (1 − momentum)·runMean + momentum·mean;
// runVar = (1 − momentum)·runVar + momentum·variance·count/(count − 1) — the stored variance is unbiased.
struct Dims { groups: u32, count: u32, momentum: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> runMean: array<f32>;
@group(0) @binding(2) var<storage, read_write> runVar: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> variance: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = flat_id(gid, nwg);
  if (g >= dims.groups) { return; }
  let n = f32(dims.count);
  runMean[g] = (1.0 - dims.momentum) * runMean[g] + dims.momentum * mean[g];
  runVar[g] = (1.0 - dims.momentum) * runVar[g] + dims.momentum * variance[g] * n / (n - 1.0);
}
