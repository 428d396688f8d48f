// matmulGroupedTN: the grouped weight gradient dB[g] (N, K) += Σ_{r in group g} dC[r, :]ᵀ ⊗ A[r, :];  dC (P, N),
// A (P, K), dB (G, N, K). Each expert g is one z-slice of the grid: a tiled TN product (64×64 tile of dB[g], 4×4
// register blocks) whose reduction runs over that expert's rows offsets[g] ≤ r < offsets[g+1] in steps of 16.
struct Dims { P: u32, N: u32, K: u32, G: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dB: array<f32>;
@group(0) @binding(2) var<storage, read> dC: array<f32>;
@group(0) @binding(3) var<storage, read> A: array<f32>;
@group(0) @binding(4) var<storage, read> offsets: array<i32>;

var<workgroup> Ds: array<vec4<f32>, 256>; // (16 rows r, 64/4 of n)
var<workgroup> As: array<vec4<f32>, 256>; // (16 rows r, 64/4 of k)

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let g = wid.z;
  let n0 = wid.y * 64u;
  let k0 = wid.x * 64u;
  let rBegin = u32(offsets[g]);
  let rEnd = u32(offsets[g + 1u]);
  var acc: array<vec4<f32>, 4>; // rows n0 + ly*4 + i of dB[g], columns k0 + lx*4 .. +3
  // Staging: both operands are stored with the row r outermost, so 16 threads sweep one row's 64 columns.
  let q = tid % 16u;
  let rr = tid / 16u;
  for (var r0 = rBegin; r0 < rEnd; r0 += 16u) {
    let r = r0 + rr;
    var dv = vec4<f32>(0.0);
    var av = vec4<f32>(0.0);
    if (r < rEnd) {
      for (var j = 0u; j < 4u; j++) {
        let n = n0 + q * 4u + j;
        if (n < dims.N) { dv[j] = dC[r * dims.N + n]; }
        let k = k0 + q * 4u + j;
        if (k < dims.K) { av[j] = A[r * dims.K + k]; }
      }
    }
    Ds[rr * 16u + q] = dv;
    As[rr * 16u + q] = av;
    workgroupBarrier();
    for (var t = 0u; t < 16u; t++) {
      let d4 = Ds[t * 16u + lid.y];
      let a4 = As[t * 16u + lid.x];
      acc[0] = fma(vec4<f32>(d4.x), a4, acc[0]);
      acc[1] = fma(vec4<f32>(d4.y), a4, acc[1]);
      acc[2] = fma(vec4<f32>(d4.z), a4, acc[2]);
      acc[3] = fma(vec4<f32>(d4.w), a4, acc[3]);
    }
    workgroupBarrier();
  }
  let base = g * dims.N * dims.K;
  for (var i = 0u; i < 4u; i++) {
    let n = n0 + lid.y * 4u + i;
    if (n >= dims.N) { break; }
    for (var j = 0u; j < 4u; j++) {
      let k = k0 + lid.x * 4u + j;
      if (k < dims.K) { dB[base + n * dims.K + k] += acc[i][j]; }
    }
  }
}
