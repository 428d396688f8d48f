// smoeAuxBackward: dz[t, j] += coefBalance·(E/T)·probs[t,j]·(f_j − Σ_i f_i·probs[t,i]) + coefZ·(2/T)·lse_t·probs[t,j]
// f (E) = count/(T·k) is formed first (entry main, one thread per expert, into scratch), then one thread per token
// (entry rows).
struct Dims { T: u32, E: u32, k: u32, coefBalance: f32, coefZ: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dz: array<f32>;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> expertIdx: array<i32>;
@group(0) @binding(5) var<storage, read_write> f: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.E) { return; }
  var count = 0u;
  for (var p = 0u; p < dims.T * dims.k; p++) {
    if (u32(expertIdx[p]) == i) { count++; }
  }
  f[i] = f32(count) / f32(dims.T * dims.k);
}

@compute @workgroup_size(256)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat_id(gid, nwg);
  if (t >= dims.T) { return; }
  let base = t * dims.E;
  var fp = 0.0;
  for (var i = 0u; i < dims.E; i++) { fp += f[i] * probs[base + i]; }
  let T = f32(dims.T);
  for (var j = 0u; j < dims.E; j++) {
    let p = probs[base + j];
    dz[base + j] += dims.coefBalance * (f32(dims.E) / T) * p * (f[j] - fp) + dims.coefZ * (2.0 / T) * lse[t] * p;
  }
}
