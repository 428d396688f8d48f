// monetHdMixBackward (docs/spec.md §1.10, MoHDE), per token, in four passes (one entry point each, run in order):
//   dg2[h,j] += Σ_c dy[j,c]·cc[h,c]                (entry main)
//   dcc[h,c]  = Σ_j g2[h,j]·dy[j,c]                (entry dcc; dcc is a scratch buffer of this kernel)
//   dg1[h,i] += Σ_c dcc[h,c]·a[i,c]                (entry dg1)
//   da[i,c]  += Σ_h g1[h,i]·dcc[h,c]               (entry da)
// a, dy, da (T, E, m); g1, g2, dg1, dg2 (T, H, E); cc, dcc (T, H, m).
struct Dims { T: u32, H: u32, E: u32, m: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> da: array<f32>;
@group(0) @binding(2) var<storage, read_write> dg1: array<f32>;
@group(0) @binding(3) var<storage, read_write> dg2: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> a: array<f32>;
@group(0) @binding(6) var<storage, read> g1: array<f32>;
@group(0) @binding(7) var<storage, read> g2: array<f32>;
@group(0) @binding(8) var<storage, read> cc: array<f32>;
@group(0) @binding(9) var<storage, read_write> dcc: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, j)
  if (idx >= dims.T * dims.H * dims.E) { return; }
  let t = idx / (dims.H * dims.E);
  let h = (idx / dims.E) % dims.H;
  let j = idx % dims.E;
  var acc = 0.0;
  for (var c = 0u; c < dims.m; c++) {
    acc = fma(dy[(t * dims.E + j) * dims.m + c], cc[(t * dims.H + h) * dims.m + c], acc);
  }
  dg2[idx] += acc;
}

@compute @workgroup_size(256)
fn dcc_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, c)
  if (idx >= dims.T * dims.H * dims.m) { return; }
  let t = idx / (dims.H * dims.m);
  let h = (idx / dims.m) % dims.H;
  let c = idx % dims.m;
  var acc = 0.0;
  for (var j = 0u; j < dims.E; j++) {
    acc = fma(g2[(t * dims.H + h) * dims.E + j], dy[(t * dims.E + j) * dims.m + c], acc);
  }
  dcc[idx] = acc;
}

@compute @workgroup_size(256)
fn dg1_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, i)
  if (idx >= dims.T * dims.H * dims.E) { return; }
  let t = idx / (dims.H * dims.E);
  let h = (idx / dims.E) % dims.H;
  let i = idx % dims.E;
  var acc = 0.0;
  for (var c = 0u; c < dims.m; c++) {
    acc = fma(dcc[(t * dims.H + h) * dims.m + c], a[(t * dims.E + i) * dims.m + c], acc);
  }
  dg1[idx] += acc;
}

@compute @workgroup_size(256)
fn da_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, i, c)
  if (idx >= dims.T * dims.E * dims.m) { return; }
  let t = idx / (dims.E * dims.m);
  let i = (idx / dims.m) % dims.E;
  let c = idx % dims.m;
  var acc = 0.0;
  for (var h = 0u; h < dims.H; h++) {
    acc = fma(g1[(t * dims.H + h) * dims.E + i], dcc[(t * dims.H + h) * dims.m + c], acc);
  }
  da[idx] += acc;
}
