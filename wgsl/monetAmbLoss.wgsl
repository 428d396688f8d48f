// monetAmbLoss (docs/spec.md §1.7, averaged over tokens): loss[0] += scale·(1/(2·H·T))·Σ_{t,h} (1 − max_i g[t,h,i]).
struct Dims { T: u32, H: u32, E: u32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
  var acc = 0.0;
  for (var row = tid; row < dims.T * dims.H; row += 256u) {
    var mx = 0.0;
    for (var i = 0u; i < dims.E; i++) { mx = max(mx, g[row * dims.E + i]); }
    acc += 1.0 - mx;
  }
  red[tid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  if (tid == 0u) { loss[0] += dims.scale * red[0] / (2.0 * f32(dims.H) * f32(dims.T)); }
}
