// moeSort — a stable counting sort of the P = T·k (token, slot) pairs by expert, on the device (no host round trip):
//   offsets[e] = #{p : expertIdx[p] < e}, e ≤ E               (entry main: one thread per e)
//   pos[p] = offsets[e_p] + #{p' < p : e_p' = e_p};  order[pos[p]] = p   (entry place: one thread per pair)
// O(P) work per thread — plain, deterministic and stable; rows of expert e are offsets[e] ≤ r < offsets[e+1].
struct Dims { P: u32, E: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> order: array<i32>;
@group(0) @binding(2) var<storage, read_write> pos: array<i32>;
@group(0) @binding(3) var<storage, read_write> offsets: array<i32>;
@group(0) @binding(4) var<storage, read> expertIdx: array<i32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let e = flat_id(gid, nwg);
  if (e > dims.E) { return; }
  var c = 0;
  for (var p = 0u; p < dims.P; p++) {
    if (expertIdx[p] < i32(e)) { c++; }
  }
  offsets[e] = c;
}

@compute @workgroup_size(256)
fn place(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let p = flat_id(gid, nwg);
  if (p >= dims.P) { return; }
  let e = expertIdx[p];
  var before = 0;
  for (var o = 0u; o < p; o++) {
    if (expertIdx[o] == e) { before++; }
  }
  let r = offsets[e] + before;
  pos[p] = r;
  order[r] = i32(p);
}
