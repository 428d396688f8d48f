// peerRoute — product-key retrieval (docs/spec.md §2.2), one 64-thread workgroup per (token t, head h):
//   q1, q2 = the two halves of q[t, h·dk : (h+1)·dk];  s1[a] = q1·C[a],  s2[b] = q2·C'[b]   (C, C' = subKeys[0], [1])
//   A = top-k of s1, B = top-k of s2;  candidates (a, b) ∈ A × B score s1[a] + s2[b], id a·n + b
//   ids[t,h,:], scores[t,h,:] = the top-k candidates, descending score, ties → lower id
// Every top-k here is by rank counting (rank = #{better}), which gives the tie rule exactly and needs no sort.
// Limits of this kernel (checked on the host): n ≤ 1024 sub-keys per side, k ≤ 32.
// q (T, H·dk); subKeys (2, n, dk/2); ids, scores (T, H, k).
struct Dims { T: u32, H: u32, dk: u32, n: u32, k: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> ids: array<i32>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> subKeys: array<f32>;

var<workgroup> s1: array<f32, 1024>;
var<workgroup> s2: array<f32, 1024>;
var<workgroup> topA: array<u32, 32>;
var<workgroup> topB: array<u32, 32>;
var<workgroup> candScore: array<f32, 1024>;
var<workgroup> candId: array<u32, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let row = wid.x + wid.y * nwg.x; // t·H + h
  if (row >= dims.T * dims.H) { return; }
  let t = row / dims.H;
  let h = row % dims.H;
  let half = dims.dk / 2u;
  let qbase = t * dims.H * dims.dk + h * dims.dk;
  let n = dims.n;
  let k = dims.k;
  for (var a = tid; a < n; a += 64u) {
    var d1 = 0.0;
    var d2 = 0.0;
    for (var c = 0u; c < half; c++) {
      d1 = fma(q[qbase + c], subKeys[a * half + c], d1);
      d2 = fma(q[qbase + half + c], subKeys[(n + a) * half + c], d2);
    }
    s1[a] = d1;
    s2[a] = d2;
  }
  workgroupBarrier();
  for (var a = tid; a < n; a += 64u) {
    var r1 = 0u;
    var r2 = 0u;
    for (var o = 0u; o < n; o++) {
      if (s1[o] > s1[a] || (s1[o] == s1[a] && o < a)) { r1++; }
      if (s2[o] > s2[a] || (s2[o] == s2[a] && o < a)) { r2++; }
    }
    if (r1 < k) { topA[r1] = a; }
    if (r2 < k) { topB[r2] = a; }
  }
  workgroupBarrier();
  let kk = k * k;
  for (var ci = tid; ci < kk; ci += 64u) {
    let a = topA[ci / k];
    let b = topB[ci % k];
    candScore[ci] = s1[a] + s2[b];
    candId[ci] = a * n + b;
  }
  workgroupBarrier();
  for (var ci = tid; ci < kk; ci += 64u) {
    let sc = candScore[ci];
    let id = candId[ci];
    var r = 0u;
    for (var o = 0u; o < kk; o++) {
      if (candScore[o] > sc || (candScore[o] == sc && candId[o] < id)) { r++; }
    }
    if (r < k) {
      ids[row * k + r] = i32(id);
      scores[row * k + r] = sc;
    }
  }
}
