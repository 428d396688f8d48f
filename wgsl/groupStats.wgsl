// groupStats: x viewed as (outer, groups, inner); mean (groups) and BIASED variance (groups) over each group's
// outer·inner entries (BatchNorm's batch statistics). One 64-thread workgroup per group, two passes (mean, then
// squared deviations) — a one-pass E[x²] − E[x]² loses digits in float32.
struct Dims { outer: u32, groups: u32, inner: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> variance: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let g = wid.x;
  let count = dims.outer * dims.inner;
  var acc = 0.0;
  for (var e = tid; e < count; e += 64u) {
    let o = e / dims.inner;
    let i = e % dims.inner;
    acc += x[(o * dims.groups + g) * dims.inner + i];
  }
  let mu = wg_sum64(tid, acc) / f32(count);
  acc = 0.0;
  for (var e = tid; e < count; e += 64u) {
    let o = e / dims.inner;
    let i = e % dims.inner;
    let dev = x[(o * dims.groups + g) * dims.inner + i] - mu;
    acc += dev * dev;
  }
  let v = wg_sum64(tid, acc) / f32(count);
  if (tid == 0u) {
    mean[g] = mu;
    variance[g] = v;
  }
}
