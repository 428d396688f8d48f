// topkRows: idx (rows, k), val (rows, k) = the k largest entries of each row of x (rows, n), descending, ties →
// lower index. Without sorting: entry j's place in that order is its rank = #{i : x_i > x_j, or x_i = x_j and
// i < j}; ranks are distinct, so each entry with rank < k writes its own output slot. One thread per entry.
struct Dims { rows: u32, n: u32, k: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> val: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.rows * dims.n) { return; }
  let row = i / dims.n;
  let j = i % dims.n;
  let base = row * dims.n;
  let v = x[i];
  var rank = 0u;
  for (var o = 0u; o < dims.n; o++) {
    let w = x[base + o];
    if (w > v || (w == v && o < j)) { rank++; }
  }
  if (rank < dims.k) {
    idx[row * dims.k + rank] = i32(j);
    val[row * dims.k + rank] = v;
  }
}
