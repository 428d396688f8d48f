// swiglu: h[i] = silu(g[i])·u[i]  (the gated hidden of a SwiGLU FFN; g = gate_proj x, u = up_proj x).
struct Dims { n: u32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> h: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_id(gid, nwg);
  if (i < dims.n) { h[i] = act_f(ACT_SILU, g[i]) * u[i]; }
}
