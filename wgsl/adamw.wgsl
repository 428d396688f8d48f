// adamw — one AdamW step in place, PyTorch semantics (decoupled weight decay, bias-corrected moments):
//   g ← g·gradScale·ctl[0] (averaging, clipping);  p −= lr·weightDecay·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//   p −= lr·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps)
// The bias corrections 1 − β^step are computed on the host in float64 and passed in (bc1, bc2). The step-control
// tensor ctl (stepGuard) supplies the clip factor ctl[0] (g is multiplied by gradScale·ctl[0]) and the skip flag
// ctl[1]: on a skipped step nothing is written.
struct Dims { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, weightDecay: f32, bc1: f32, bc2: f32, gradScale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> ctl: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.n || ctl[1] != 0.0) { return; }
  let grad = g[i] * (dims.gradScale * ctl[0]);
  var w = p[i] - dims.lr * dims.weightDecay * p[i];
  let mi = dims.beta1 * m[i] + (1.0 - dims.beta1) * grad;
  let vi = dims.beta2 * v[i] + (1.0 - dims.beta2) * grad * grad;
  m[i] = mi;
  v[i] = vi;
  w -= dims.lr * (mi / dims.bc1) / (sqrt(vi / dims.bc2) + dims.eps);
  p[i] = w;
}
