// smoeAux (docs/spec.md §3.2, §3.4) from the gate logits z (T, E) and the selected ids (T, k):
//   probs[t, :] = softmax(z[t, :]), lse[t] = logsumexp(z[t, :])          (entry main: one thread per token; saved)
//   lossBalance += scale·E·Σ_i f_i·P_i,  f_i = count_i/(T·k),  P_i = mean_t probs[t, i]
//   lossZ       += scale·(1/T)·Σ_t lse_t²                                (entry losses: one 256-thread workgroup)
struct Dims { T: u32, E: u32, k: u32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> lossBalance: array<f32>;
@group(0) @binding(2) var<storage, read_write> lossZ: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read> z: array<f32>;
@group(0) @binding(6) var<storage, read> expertIdx: array<i32>;
var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_id(gid, nwg);
  if (t >= dims.T) { return; }
  let base = t * dims.E;
  var mx = -3.4028234e38;
  for (var j = 0u; j < dims.E; j++) { mx = max(mx, z[base + j]); }
  var sum = 0.0;
  for (var j = 0u; j < dims.E; j++) { sum += exp(z[base + j] - mx); }
  for (var j = 0u; j < dims.E; j++) { probs[base + j] = exp(z[base + j] - mx) / sum; }
  lse[t] = mx + log(sum);
}

@compute @workgroup_size(256)
fn losses(@builtin(local_invocation_index) tid: u32) {
  var bal = 0.0;
  for (var i = tid; i < dims.E; i += 256u) {
    var count = 0u;
    for (var p = 0u; p < dims.T * dims.k; p++) {
      if (u32(expertIdx[p]) == i) { count++; }
    }
    var P = 0.0;
    for (var t = 0u; t < dims.T; t++) { P += probs[t * dims.E + i]; }
    bal += (f32(count) / f32(dims.T * dims.k)) * (P / f32(dims.T));
  }
  var zz = 0.0;
  for (var t = tid; t < dims.T; t += 256u) { zz += lse[t] * lse[t]; }
  red[tid] = bal;
  red2[tid] = zz;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) {
      red[tid] += red[tid + s];
      red2[tid] += red2[tid + s];
    }
    workgroupBarrier();
  }
  if (tid == 0u) {
    lossBalance[0] += dims.scale * f32(dims.E) * red[0];
    lossZ[0] += dims.scale * red2[0] / f32(dims.T);
  }
}
