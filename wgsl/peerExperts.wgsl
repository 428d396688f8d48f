// peerExperts — singleton experts (docs/spec.md §2.2): expert id is the pair of rows wDown[id], wUp[id] (d each).
//   hpre[t,h,r] = wDown[id]·x[t]                                   (entry main: one thread per (t, h, r); saved)
//   y[t] += Σ_{h,r} w[t,h,r]·f(hpre[t,h,r])·wUp[id]                (entry combine: one thread per (t, c))
// x, y (T, d); wDown, wUp (N, d); ids, w, hpre (T, H, k).
struct Dims { T: u32, H: u32, k: u32, d: u32, kind: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> hpre: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> wDown: array<f32>;
@group(0) @binding(5) var<storage, read> wUp: array<f32>;
@group(0) @binding(6) var<storage, read> ids: array<i32>;
@group(0) @binding(7) var<storage, read> w: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let slot = flat_id(gid, nwg); // (t, h, r)
  if (slot >= dims.T * dims.H * dims.k) { return; }
  let t = slot / (dims.H * dims.k);
  let id = u32(ids[slot]);
  var acc = 0.0;
  for (var c = 0u; c < dims.d; c++) { acc = fma(wDown[id * dims.d + c], x[t * dims.d + c], acc); }
  hpre[slot] = acc;
}

@compute @workgroup_size(256)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, c)
  if (idx >= dims.T * dims.d) { return; }
  let t = idx / dims.d;
  let c = idx % dims.d;
  let Hk = dims.H * dims.k;
  var acc = 0.0;
  for (var s = 0u; s < Hk; s++) {
    let slot = t * Hk + s;
    let id = u32(ids[slot]);
    acc = fma(w[slot] * act_f(dims.kind, hpre[slot]), wUp[id * dims.d + c], acc);
  }
  y[idx] += acc;
}
