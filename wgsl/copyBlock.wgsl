// copyBlock: dst[dstOffset + r·dstLd + c] (= or +=) src[srcOffset + r·srcLd + c], r < rows, c < cols.
// Plain copies move 32-bit patterns (any dtype); accumulate adds as float32.
struct Dims { rows: u32, cols: u32, dstLd: u32, srcLd: u32, dstOffset: u32, srcOffset: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.cols) { return; }
  let r = i / dims.cols;
  let c = i % dims.cols;
  let d = dims.dstOffset + r * dims.dstLd + c;
  let v = src[dims.srcOffset + r * dims.srcLd + c];
  if (dims.accumulate != 0u) {
    dst[d] = bitcast<u32>(bitcast<f32>(dst[d]) + bitcast<f32>(v));
  } else {
    dst[d] = v;
  }
}
