// monetVdMix — the MoVDE contractions (docs/spec.md §1.5), m = moe_dim/2. Per token t:
//   c1[h,c] = Σ_i g1[h,i]·a1[i,c];  c2[h,c] = Σ_j g2[h,j]·a2[j,c]                       (entry main, saved)
//   h11[i,c] = G1[i]·a1[i,c]                     "btim,bthi->btim"  straight flow, first half
//   h12[i,c] = Σ_h g1[h,i]·c2[h,c]               "btjm,bthj,bthi->btim"  cross flow into first-router experts
//   h21[j,c] = Σ_h g2[h,j]·c1[h,c]               "btim,bthi,bthj->btjm"  cross flow into second-router experts
//   h22[j,c] = G2[j]·a2[j,c]                     "btjm,bthj->btjm"  straight flow, second half
// a1, a2, h11..h22 (T, E, m); g1, g2 (T, H, E); G1, G2 (T, E) (= headSum); c1, c2 (T, H, m).
// Three entry points, run in order: main (c1, c2), straight (h11, h22), cross (h12, h21). The hidden tensors are two
// passes, not one, so that no entry point uses more than 6 storage buffers: WebGPU guarantees only 8 per shader
// stage (src/backend/webgpu/bindings.ts), and all twelve tensors in one pass would need 12.
struct Dims { T: u32, H: u32, E: u32, m: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> h11: array<f32>;
@group(0) @binding(2) var<storage, read_write> h12: array<f32>;
@group(0) @binding(3) var<storage, read_write> h21: array<f32>;
@group(0) @binding(4) var<storage, read_write> h22: array<f32>;
@group(0) @binding(5) var<storage, read_write> c1: array<f32>;
@group(0) @binding(6) var<storage, read_write> c2: array<f32>;
@group(0) @binding(7) var<storage, read> a1: array<f32>;
@group(0) @binding(8) var<storage, read> a2: array<f32>;
@group(0) @binding(9) var<storage, read> g1: array<f32>;
@group(0) @binding(10) var<storage, read> g2: array<f32>;
@group(0) @binding(11) var<storage, read> G1: array<f32>;
@group(0) @binding(12) var<storage, read> G2: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, c)
  if (idx >= dims.T * dims.H * dims.m) { return; }
  let t = idx / (dims.H * dims.m);
  let h = (idx / dims.m) % dims.H;
  let c = idx % dims.m;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var i = 0u; i < dims.E; i++) {
    let a_at = (t * dims.E + i) * dims.m + c;
    let g_at = (t * dims.H + h) * dims.E + i;
    s1 = fma(g1[g_at], a1[a_at], s1);
    s2 = fma(g2[g_at], a2[a_at], s2);
  }
  c1[idx] = s1;
  c2[idx] = s2;
}

@compute @workgroup_size(256)
fn straight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, i, c); i doubles as j for the second-router tensors
  if (idx >= dims.T * dims.E * dims.m) { return; }
  let ti = idx / dims.m; // (t, i)
  h11[idx] = G1[ti] * a1[idx];
  h22[idx] = G2[ti] * a2[idx];
}

@compute @workgroup_size(256)
fn cross(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, i, c); i doubles as j for the second-router tensors
  if (idx >= dims.T * dims.E * dims.m) { return; }
  let t = idx / (dims.E * dims.m);
  let i = (idx / dims.m) % dims.E;
  let c = idx % dims.m;
  var s12 = 0.0;
  var s21 = 0.0;
  for (var h = 0u; h < dims.H; h++) {
    let g_at = (t * dims.H + h) * dims.E + i;
    let c_at = (t * dims.H + h) * dims.m + c;
    s12 = fma(g1[g_at], c2[c_at], s12);
    s21 = fma(g2[g_at], c1[c_at], s21);
  }
  h12[idx] = s12;
  h21[idx] = s21;
}
