// swigluBackward: dg[i] += dh[i]·u[i]·silu'(g[i]);  du[i] += dh[i]·silu(g[i]).
struct Dims { n: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> dg: array<f32>;
@group(0) @binding(2) var<storage, read_write> du: array<f32>;
@group(0) @binding(3) var<storage, read> dh: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> u: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i >= dims.n) { return; }
  dg[i] += dh[i] * u[i] * act_df(ACT_SILU, g[i]);
  du[i] += dh[i] * act_f(ACT_SILU, g[i]);
}
