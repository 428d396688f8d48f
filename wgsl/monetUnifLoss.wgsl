// monetUnifLoss (docs/spec.md §1.7, our reading of ĝ as the batch mean):
// loss[0] += scale·(−1/(2·H·E))·Σ_{h,i} log(ḡ[h,i] + eps), ḡ[h,i] = (1/T)·Σ_t g[t,h,i]. One 256-thread workgroup:
// each thread owns some (h, i), then a tree reduction.
struct Dims { T: u32, H: u32, E: u32, eps: f32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
  let HE = dims.H * dims.E;
  var acc = 0.0;
  for (var hi = tid; hi < HE; hi += 256u) {
    var s = 0.0;
    for (var t = 0u; t < dims.T; t++) { s += g[t * HE + hi]; }
    acc += log(s / f32(dims.T) + dims.eps);
  }
  red[tid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  if (tid == 0u) { loss[0] += dims.scale * (-1.0 / (2.0 * f32(HE))) * red[0]; }
}
