// scatterAddRows: dst[idx[r], :] += src[r, :] — the embedding backward; repeated tokens add up, through float
// atomics (compare-and-swap on the bit pattern), so the order of the additions may vary.
struct Dims { rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dst: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.cols) { return; }
  let r = i / dims.cols;
  let at = u32(idx[r]) * dims.cols + i % dims.cols;
  let v = src[i];
  var old = atomicLoad(&dst[at]);
  loop {
    let res = atomicCompareExchangeWeak(&dst[at], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (res.exchanged) { break; }
    old = res.old_value;
  }
}
