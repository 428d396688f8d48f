// peerRouteBackward — gradient of the selected scores score_r = q1·C[a_r] + q2·C'[b_r] (a = id / n, b = id mod n):
//   dq1 += Σ_r dscores_r·C[a_r],  dq2 += Σ_r dscores_r·C'[b_r]          (entry main: one thread per (t, h, c))
//   dC[a_r] += dscores_r·q1,  dC'[b_r] += dscores_r·q2                   (entry dkeys: scatter-add, one thread
//                                                                         per (t, h, r, c), float atomics)
// Several tokens and heads pick the same sub-key, hence the atomic adds (their order, and so the last bits of the
// sum, may vary from run to run).
struct Dims { T: u32, H: u32, dk: u32, n: u32, k: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dq: array<f32>;
@group(0) @binding(2) var<storage, read_write> dSubKeys: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read> dscores: array<f32>;
@group(0) @binding(4) var<storage, read> q: array<f32>;
@group(0) @binding(5) var<storage, read> subKeys: array<f32>;
@group(0) @binding(6) var<storage, read> ids: array<i32>;

fn atomic_add_keys(i: u32, v: f32) {
  var old = atomicLoad(&dSubKeys[i]);
  loop {
    let r = atomicCompareExchangeWeak(&dSubKeys[i], old, bitcast<u32>(bitcast<f32>(old) + v));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, c), c < dk
  if (idx >= dims.T * dims.H * dims.dk) { return; }
  let row = idx / dims.dk;
  let c = idx % dims.dk;
  let half = dims.dk / 2u;
  var acc = 0.0;
  for (var r = 0u; r < dims.k; r++) {
    let id = u32(ids[row * dims.k + r]);
    var key: f32;
    if (c < half) { key = subKeys[(id / dims.n) * half + c]; }
    else { key = subKeys[(dims.n + id % dims.n) * half + (c - half)]; }
    acc = fma(dscores[row * dims.k + r], key, acc);
  }
  dq[idx] += acc;
}

@compute @workgroup_size(256)
fn dkeys(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (t, h, r, c), c < dk
  if (idx >= dims.T * dims.H * dims.k * dims.dk) { return; }
  let slot = idx / dims.dk; // (t, h, r)
  let row = slot / dims.k;  // (t, h)
  let c = idx % dims.dk;
  let half = dims.dk / 2u;
  let id = u32(ids[slot]);
  let g = dscores[slot];
  let qv = q[row * dims.dk + c]; // q (T, H·dk) flattened: (t·H + h)·dk + c
  if (c < half) { atomic_add_keys((id / dims.n) * half + c, g * qv); }
  else { atomic_add_keys((dims.n + id % dims.n) * half + (c - half), g * qv); }
}
