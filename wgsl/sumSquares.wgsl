// sumSquares: out[0] (= or +=) Σ_i x[i]², i < n. One 256-thread workgroup: strided partial sums, then a tree
// reduction in workgroup memory. (A gradient norm is taken once per step, so one workgroup is enough.)
struct Dims { n: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> outv: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
  var acc = 0.0;
  for (var i = tid; i < dims.n; i += 256u) { acc += x[i] * x[i]; }
  part[tid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { part[tid] += part[tid + s]; }
    workgroupBarrier();
  }
  if (tid == 0u) {
    if (dims.accumulate != 0u) { outv[0] += part[0]; } else { outv[0] = part[0]; }
  }
}
