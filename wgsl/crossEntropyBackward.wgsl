// crossEntropyBackward: dlogits[b·S + s, :] += scale·(probs − onehot(tokens[b·S + s + 1])) for s < S−1; the last
// position of each sequence predicts nothing and gets no gradient.
struct Dims { B: u32, S: u32, V: u32, scale: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> tokens: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.B * dims.S * dims.V) { return; }
  let row = i / dims.V;
  if (row % dims.S == dims.S - 1u) { return; }
  let j = i % dims.V;
  let tgt = u32(tokens[row + 1u]);
  dlogits[i] += dims.scale * (probs[i] - select(0.0, 1.0, j == tgt));
}
