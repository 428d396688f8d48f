// attentionBackward, accumulating into dq, dk, dv. With P = probs, dP[i,j] = dout[i]·v[j] and the softmax backward
// dS[i,j] = P[i,j]·(dP[i,j] − Σ_j' P[i,j']·dP[i,j']) / √hd  (the 1/√hd of the scores folded in):
//   entry main  (b, h, i):      dS row into scratch dS (B, nH, S, S)
//   entry dquery (b, i, h, c):  dq[b,i,h,c] += Σ_j dS[b,h,i,j]·k[b,j,kv,c]
//   entry dkv (b, j, kv, c):    dk[b,j,kv,c] += Σ_{h of kv} Σ_{i ≥ j} dS[b,h,i,j]·q[b,i,h,c]
//                               dv[b,j,kv,c] += Σ_{h of kv} Σ_{i ≥ j} P[b,h,i,j]·dout[b,i,h,c]
// Gathers only: every output element is owned by one thread, so there are no atomics and the sums are deterministic.
struct Dims { B: u32, S: u32, nH: u32, nKV: u32, hd: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dq: array<f32>;
@group(0) @binding(2) var<storage, read_write> dk: array<f32>;
@group(0) @binding(3) var<storage, read_write> dv: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> q: array<f32>;
@group(0) @binding(6) var<storage, read> k: array<f32>;
@group(0) @binding(7) var<storage, read> v: array<f32>;
@group(0) @binding(8) var<storage, read> probs: array<f32>;
@group(0) @binding(9) var<storage, read_write> dS: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = flat_id(gid, nwg); // (b, h, i)
  if (row >= dims.B * dims.nH * dims.S) { return; }
  let i = row % dims.S;
  let h = (row / dims.S) % dims.nH;
  let b = row / (dims.S * dims.nH);
  let kv = h / (dims.nH / dims.nKV);
  let oAt = (b * dims.S + i) * dims.nH * dims.hd + h * dims.hd;
  let pBase = row * dims.S;
  var pdp = 0.0;
  for (var j = 0u; j <= i; j++) {
    let vAt = (b * dims.S + j) * dims.nKV * dims.hd + kv * dims.hd;
    var dp = 0.0;
    for (var c = 0u; c < dims.hd; c++) { dp = fma(dout[oAt + c], v[vAt + c], dp); }
    dS[pBase + j] = dp;
    pdp += probs[pBase + j] * dp;
  }
  let scale = inverseSqrt(f32(dims.hd));
  for (var j = 0u; j < dims.S; j++) {
    if (j <= i) { dS[pBase + j] = probs[pBase + j] * (dS[pBase + j] - pdp) * scale; } else { dS[pBase + j] = 0.0; }
  }
}

@compute @workgroup_size(256)
fn dquery(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (b, i, h, c)
  if (idx >= dims.B * dims.S * dims.nH * dims.hd) { return; }
  let c = idx % dims.hd;
  let h = (idx / dims.hd) % dims.nH;
  let i = (idx / (dims.hd * dims.nH)) % dims.S;
  let b = idx / (dims.hd * dims.nH * dims.S);
  let kv = h / (dims.nH / dims.nKV);
  let pBase = ((b * dims.nH + h) * dims.S + i) * dims.S;
  var acc = 0.0;
  for (var j = 0u; j <= i; j++) {
    acc = fma(dS[pBase + j], k[(b * dims.S + j) * dims.nKV * dims.hd + kv * dims.hd + c], acc);
  }
  dq[idx] += acc;
}

@compute @workgroup_size(256)
fn dkv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat_id(gid, nwg); // (b, j, kv, c)
  if (idx >= dims.B * dims.S * dims.nKV * dims.hd) { return; }
  let c = idx % dims.hd;
  let kv = (idx / dims.hd) % dims.nKV;
  let j = (idx / (dims.hd * dims.nKV)) % dims.S;
  let b = idx / (dims.hd * dims.nKV * dims.S);
  let group = dims.nH / dims.nKV;
  var accK = 0.0;
  var accV = 0.0;
  for (var h = kv * group; h < (kv + 1u) * group; h++) {
    for (var i = j; i < dims.S; i++) {
      let p = ((b * dims.nH + h) * dims.S + i) * dims.S + j;
      let qAt = (b * dims.S + i) * dims.nH * dims.hd + h * dims.hd + c;
      accK = fma(dS[p], q[qAt], accK);
      accV = fma(probs[p], dout[qAt], accV);
    }
  }
  dk[idx] += accK;
  dv[idx] += accV;
}
