// gatherRowsBf16: dst[r, :] = table[idx[r], :] widened from bfloat16 (two per 32-bit word, element e in the low half
// of word e / 2 when e is even, the high half when odd) — the embedding lookup on 16-bit weights. One thread per
// element.
struct Dims { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.cols) { return; }
  let r = i / dims.cols;
  let e = u32(idx[r]) * dims.cols + i % dims.cols;
  let w = table[e >> 1u];
  dst[i] = bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u));
}
