// crossEntropy — next-token loss: probs (B·S, V) = softmax(logits) (saved; every position, the last included),
// loss[0] += scale·Σ_{b, s < S−1} −log probs[b·S + s, tokens[b·S + s + 1]].
//   entry main: one 64-thread workgroup per position (softmax over V)
//   entry total: one 256-thread workgroup sums the −log p terms (a single scalar, so one writer)
struct Dims { B: u32, S: u32, V: u32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> tokens: array<i32>;
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= dims.B * dims.S) { return; }
  let base = row * dims.V;
  var mx = -3.4028234e38;
  for (var j = tid; j < dims.V; j += 64u) { mx = max(mx, logits[base + j]); }
  red[tid] = mx;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = tid; j < dims.V; j += 64u) { sum += exp(logits[base + j] - mx); }
  red[tid] = sum;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  for (var j = tid; j < dims.V; j += 64u) { probs[base + j] = exp(logits[base + j] - mx) * inv; }
}

@compute @workgroup_size(256)
fn total(@builtin(local_invocation_index) tid: u32) {
  var acc = 0.0;
  for (var row = tid; row < dims.B * dims.S; row += 256u) {
    if (row % dims.S != dims.S - 1u) {
      acc -= log(probs[row * dims.V + u32(tokens[row + 1u])]);
    }
  }
  red[tid] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  if (tid == 0u) { loss[0] += dims.scale * red[0]; }
}
