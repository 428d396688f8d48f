// peerExpertsBackward (docs/spec.md §2.5), three passes (entry points, in order):
//   main   (t, h, r): dov = dy[t]·wUp[id];  dw[t,h,r] += dov·f(hpre);  dh = dov·w·f'(hpre)  (dh: scratch (T, H, k))
//   dinput (t, c):    dx[t, c] += Σ_{h,r} dh·wDown[id, c]
//   dtables (t, h, r, c): dwUp[id, c] += w·f(hpre)·dy[t, c];  dwDown[id, c] += dh·x[t, c]   (scatter-add, atomics:
//                     the same expert is picked by many tokens and heads)
struct Dims { T: u32, H: u32, k: u32, d: u32, kind: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> dwDown: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> dwUp: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> x: array<f32>;
@group(0) @binding(7) var<storage, read> wDown: array<f32>;
@group(0) @binding(8) var<storage, read> wUp: array<f32>;
@group(0) @binding(9) var<storage, read> ids: array<i32>;
@group(0) @binding(10) var<storage, read> w: array<f32>;
@group(0) @binding(11) var<storage, read> hpre: array<f32>;
@group(0) @binding(12) var<storage, read_write> dh: array<f32>;

fn add_down(i: u32, v: f32) {
  var old = atomicLoad(&dwDown[i]);
  loop {
    let r = atomicCompareExchangeWeak(&dwDown[i], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

fn add_up(i: u32, v: f32) {
  var old = atomicLoad(&dwUp[i]);
  loop {
    let r = atomicCompareExchangeWeak(&dwUp[i], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let slot = flat_id(gid, nwg);
  if (slot >= dims.T * dims.H * dims.k) { return; }
  let t = slot / (dims.H * dims.k);
  let id = u32(ids[slot]);
  var dov = 0.0;
  for (var c = 0u; c < dims.d; c++) { dov = fma(dy[t * dims.d + c], wUp[id * dims.d + c], dov); }
  let hp = hpre[slot];
  dw[slot] += dov * act_f(dims.kind, hp);
  dh[slot] = dov * w[slot] * act_df(dims.kind, hp);
}

@compute @workgroup_size(256)
fn dinput(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, c)
  if (idx >= dims.T * dims.d) { return; }
  let t = idx / dims.d;
  let c = idx % dims.d;
  let Hk = dims.H * dims.k;
  var acc = 0.0;
  for (var s = 0u; s < Hk; s++) {
    let slot = t * Hk + s;
    acc = fma(dh[slot], wDown[u32(ids[slot]) * dims.d + c], acc);
  }
  dx[idx] += acc;
}

@compute @workgroup_size(256)
fn dtables(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, r, c)
  if (idx >= dims.T * dims.H * dims.k * dims.d) { return; }
  let slot = idx / dims.d;
  let c = idx % dims.d;
  let t = slot / (dims.H * dims.k);
  let id = u32(ids[slot]);
  add_up(id * dims.d + c, w[slot] * act_f(dims.kind, hpre[slot]) * dy[t * dims.d + c]);
  add_down(id * dims.d + c, dh[slot] * x[t * dims.d + c]);
}
