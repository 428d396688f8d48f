// monetHdMix — the MoHDE contraction (docs/spec.md §1.4) without forming the E² composite experts. Per token t:
//   cc[h,c] = Σ_i g1[h,i]·a[i,c]     "btim,bthi->bthc": mix the first-router experts per head   (entry main, saved)
//   y[j,c]  = Σ_h g2[h,j]·cc[h,c]    "bthc,bthj->btjc": spread each head over second-router experts (entry spread)
// a, y (T, E, m); g1, g2 (T, H, E); cc (T, H, m). One thread per output element; the two entries run in order.
struct Dims { T: u32, H: u32, E: u32, m: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> cc: array<f32>;
@group(0) @binding(3) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read> g1: array<f32>;
@group(0) @binding(5) var<storage, read> g2: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, c)
  if (idx >= dims.T * dims.H * dims.m) { return; }
  let t = idx / (dims.H * dims.m);
  let h = (idx / dims.m) % dims.H;
  let c = idx % dims.m;
  var acc = 0.0;
  for (var i = 0u; i < dims.E; i++) {
    acc = fma(g1[(t * dims.H + h) * dims.E + i], a[(t * dims.E + i) * dims.m + c], acc);
  }
  cc[idx] = acc;
}

@compute @workgroup_size(256)
fn spread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, j, c)
  if (idx >= dims.T * dims.E * dims.m) { return; }
  let t = idx / (dims.E * dims.m);
  let j = (idx / dims.m) % dims.E;
  let c = idx % dims.m;
  var acc = 0.0;
  for (var h = 0u; h < dims.H; h++) {
    acc = fma(g2[(t * dims.H + h) * dims.E + j], cc[(t * dims.H + h) * dims.m + c], acc);
  }
  y[idx] = acc;
}
