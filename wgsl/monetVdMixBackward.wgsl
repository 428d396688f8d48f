// monetVdMixBackward (docs/spec.md §1.10, MoVDE) given dh11..dh22, five passes (entry points, run in order):
//   dc1[h,c] = Σ_j g2[h,j]·dh21[j,c];  dc2[h,c] = Σ_i g1[h,i]·dh12[i,c]             (entry main; scratch dc1, dc2)
//   dg1[h,i] += Σ_c (dh11[i,c]·a1[i,c] + dh12[i,c]·c2[h,c] + dc1[h,c]·a1[i,c])   (dg1_pass; the G1 path: every head)
//   dg2[h,j] += Σ_c (dh22[j,c]·a2[j,c] + dh21[j,c]·c1[h,c] + dc2[h,c]·a2[j,c])    (entry dg2_pass)
//   da1[i,c] += G1[i]·dh11[i,c] + Σ_h g1[h,i]·dc1[h,c]                             (entry da1_pass)
//   da2[j,c] += G2[j]·dh22[j,c] + Σ_h g2[h,j]·dc2[h,c]                             (entry da2_pass)
// a1, a2, da1, da2, dh11..dh22 (T, E, m); g1, g2, dg1, dg2 (T, H, E); G1, G2 (T, E); c1, c2, dc1, dc2 (T, H, m).
// The two routers' halves are separate passes so that no entry point uses more than 6 storage buffers: WebGPU
// guarantees only 8 per shader stage (src/backend/webgpu/bindings.ts); both halves of dg in one pass would need 11.
struct Dims { T: u32, H: u32, E: u32, m: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> da1: array<f32>;
@group(0) @binding(2) var<storage, read_write> da2: array<f32>;
@group(0) @binding(3) var<storage, read_write> dg1: array<f32>;
@group(0) @binding(4) var<storage, read_write> dg2: array<f32>;
@group(0) @binding(5) var<storage, read> dh11: array<f32>;
@group(0) @binding(6) var<storage, read> dh12: array<f32>;
@group(0) @binding(7) var<storage, read> dh21: array<f32>;
@group(0) @binding(8) var<storage, read> dh22: array<f32>;
@group(0) @binding(9) var<storage, read> a1: array<f32>;
@group(0) @binding(10) var<storage, read> a2: array<f32>;
@group(0) @binding(11) var<storage, read> g1: array<f32>;
@group(0) @binding(12) var<storage, read> g2: array<f32>;
@group(0) @binding(13) var<storage, read> G1: array<f32>;
@group(0) @binding(14) var<storage, read> G2: array<f32>;
@group(0) @binding(15) var<storage, read> c1: array<f32>;
@group(0) @binding(16) var<storage, read> c2: array<f32>;
// Scratch (T, H, m) ×2 packed in one buffer: dc1 first, then dc2.
@group(0) @binding(17) var<storage, read_write> dc: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, c)
  let THm = dims.T * dims.H * dims.m;
  if (idx >= THm) { return; }
  let t = idx / (dims.H * dims.m);
  let h = (idx / dims.m) % dims.H;
  let c = idx % dims.m;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var i = 0u; i < dims.E; i++) {
    let g_at = (t * dims.H + h) * dims.E + i;
    let a_at = (t * dims.E + i) * dims.m + c;
    s1 = fma(g2[g_at], dh21[a_at], s1);
    s2 = fma(g1[g_at], dh12[a_at], s2);
  }
  dc[idx] = s1;
  dc[THm + idx] = s2;
}

@compute @workgroup_size(256)
fn dg1_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, i)
  if (idx >= dims.T * dims.H * dims.E) { return; }
  let t = idx / (dims.H * dims.E);
  let h = (idx / dims.E) % dims.H;
  let i = idx % dims.E;
  var s = 0.0;
  for (var c = 0u; c < dims.m; c++) {
    let a_at = (t * dims.E + i) * dims.m + c;
    let c_at = (t * dims.H + h) * dims.m + c;
    s += dh11[a_at] * a1[a_at] + dh12[a_at] * c2[c_at] + dc[c_at] * a1[a_at];
  }
  dg1[idx] += s;
}

@compute @workgroup_size(256)
fn dg2_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, j)
  let THm = dims.T * dims.H * dims.m;
  if (idx >= dims.T * dims.H * dims.E) { return; }
  let t = idx / (dims.H * dims.E);
  let h = (idx / dims.E) % dims.H;
  let j = idx % dims.E;
  var s = 0.0;
  for (var c = 0u; c < dims.m; c++) {
    let a_at = (t * dims.E + j) * dims.m + c;
    let c_at = (t * dims.H + h) * dims.m + c;
    s += dh22[a_at] * a2[a_at] + dh21[a_at] * c1[c_at] + dc[THm + c_at] * a2[a_at];
  }
  dg2[idx] += s;
}

@compute @workgroup_size(256)
fn da1_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, i, c)
  if (idx >= dims.T * dims.E * dims.m) { return; }
  let t = idx / (dims.E * dims.m);
  let i = (idx / dims.m) % dims.E;
  let c = idx % dims.m;
  var s = G1[t * dims.E + i] * dh11[idx];
  for (var h = 0u; h < dims.H; h++) {
    s = fma(g1[(t * dims.H + h) * dims.E + i], dc[(t * dims.H + h) * dims.m + c], s);
  }
  da1[idx] += s;
}

@compute @workgroup_size(256)
fn da2_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, j, c)
  let THm = dims.T * dims.H * dims.m;
  if (idx >= dims.T * dims.E * dims.m) { return; }
  let t = idx / (dims.E * dims.m);
  let j = (idx / dims.m) % dims.E;
  let c = idx % dims.m;
  var s = G2[t * dims.E + j] * dh22[idx];
  for (var h = 0u; h < dims.H; h++) {
    s = fma(g2[(t * dims.H + h) * dims.E + j], dc[THm + (t * dims.H + h) * dims.m + c], s);
  }
  da2[idx] += s;
}
