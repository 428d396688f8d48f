// fill: x[i] = value, i < n. The value arrives as its 32-bit pattern (a float32 or an int32), so one kernel serves
// both dtypes.
struct Dims { n: u32, bits: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> x: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < dims.n) { x[i] = dims.bits; }
}
