// monetRoute (docs/spec.md §1.3), after the router logits z = W_r x. For each token t and head h (one 64-thread
// workgroup):
//   n_i = (z[t,h,i] − mean[h]) / sqrt(variance[h] + eps)          BatchNorm, one channel per head, no affine
//   s   = min(max_i n_i, sigma)                                    sigma = Φ⁻¹(1 − topk/E); the clamp keeps ≥ 1 expert
//   mask[t,h,i] = n_i ≥ s                                          ≥: ties are all selected
//   g[t,h,:] = softmax of the RAW logits z over the masked entries, exactly 0 elsewhere
// z, g, mask (T, H, E); mean, variance (H): batch statistics in train mode, running statistics in eval mode.
struct Dims { T: u32, H: u32, E: u32, sigma: f32, eps: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<i32>;
@group(0) @binding(3) var<storage, read> z: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> variance: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x; // = t·H + h
  if (row >= dims.T * dims.H) { return; }
  let h = row % dims.H;
  let base = row * dims.E;
  let mu = mean[h];
  let rs = inverseSqrt(variance[h] + dims.eps);
  const NEG = -3.4028234e38;
  var mx = NEG;
  for (var i = tid; i < dims.E; i += 64u) { mx = max(mx, (z[base + i] - mu) * rs); }
  let thr = min(wg_max64(tid, mx), dims.sigma);
  // Softmax over the selected raw logits: max, then sum of exponentials.
  var zmax = NEG;
  for (var i = tid; i < dims.E; i += 64u) {
    if ((z[base + i] - mu) * rs >= thr) { zmax = max(zmax, z[base + i]); }
  }
  zmax = wg_max64(tid, zmax);
  var sum = 0.0;
  for (var i = tid; i < dims.E; i += 64u) {
    if ((z[base + i] - mu) * rs >= thr) { sum += exp(z[base + i] - zmax); }
  }
  let inv = 1.0 / wg_sum64(tid, sum);
  for (var i = tid; i < dims.E; i += 64u) {
    let sel = (z[base + i] - mu) * rs >= thr;
    mask[base + i] = select(0, 1, sel);
    g[base + i] = select(0.0, exp(z[base + i] - zmax) * inv, sel);
  }
}
