// widenBf16: dst[i] = the float32 whose upper 16 bits are bfloat16 i of `packed` (two per 32-bit word, element 2j in
// the low half of word j), i < n. Exact: bfloat16 is the upper half of a float32.
struct Dims { n: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read> packed: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.n) { return; }
  let w = packed[i >> 1u];
  dst[i] = select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u);
}
