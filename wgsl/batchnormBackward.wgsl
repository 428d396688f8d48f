// batchnormBackward over (rows, cols), one 64-thread workgroup per column c, with xh = (x − μ)·rstd:
//   dgamma[c] += Σ_r dy·xh;   dbeta[c] += Σ_r dy
//   train (μ, σ² are batch statistics of x, so gradient flows through them):
//     dx += gamma·rstd·(dy − mean_r(dy) − xh·mean_r(dy·xh))
//   eval (running statistics are constants):  dx += gamma·rstd·dy
struct Dims { rows: u32, cols: u32, eps: f32, train: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> x: array<f32>;
@group(0) @binding(6) var<storage, read> mean: array<f32>;
@group(0) @binding(7) var<storage, read> variance: array<f32>;
@group(0) @binding(8) var<storage, read> gamma: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let c = wid.x;
  let mu = mean[c];
  let r = inverseSqrt(variance[c] + dims.eps);
  var sdy = 0.0;
  var sdyxh = 0.0;
  for (var row = tid; row < dims.rows; row += 64u) {
    let i = row * dims.cols + c;
    sdy += dy[i];
    sdyxh += dy[i] * (x[i] - mu) * r;
  }
  let sumDy = wg_sum64(tid, sdy);
  let sumDyXh = wg_sum64(tid, sdyxh);
  if (tid == 0u) {
    dgamma[c] += sumDyXh;
    dbeta[c] += sumDy;
  }
  let n = f32(dims.rows);
  for (var row = tid; row < dims.rows; row += 64u) {
    let i = row * dims.cols + c;
    if (dims.train != 0u) {
      let xh = (x[i] - mu) * r;
      dx[i] += gamma[c] * r * (dy[i] - sumDy / n - xh * sumDyXh / n);
    } else {
      dx[i] += gamma[c] * r * dy[i];
    }
  }
}
