// moeCombineBackward, p = t·k + s:
//   dys[pos[p], :] += w[p]·dy[t, :]        (entry main: one thread per (p, c); each pos[p] is a distinct row)
//   dw[p] += dy[t, :]·ys[pos[p], :]        (entry dweight: one thread per pair)
struct Dims { T: u32, k: u32, d: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dys: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> ys: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read> pos: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.T * dims.k * dims.d) { return; }
  let p = i / dims.d;
  let c = i % dims.d;
  let t = p / dims.k;
  dys[u32(pos[p]) * dims.d + c] += w[p] * dy[t * dims.d + c];
}

@compute @workgroup_size(256)
fn dweight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat_id(gid, nwg);
  if (p >= dims.T * dims.k) { return; }
  let t = p / dims.k;
  let r = u32(pos[p]);
  var acc = 0.0;
  for (var c = 0u; c < dims.d; c++) { acc = fma(dy[t * dims.d + c], ys[r * dims.d + c], acc); }
  dw[p] += acc;
}
