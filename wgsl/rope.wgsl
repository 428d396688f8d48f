// rope — rotary position embedding, Hugging Face rotate-half layout. x, y (B, S, heads, hd); position = s;
// inv_freq_i = theta^(−2i/hd), i < hd/2; angle = s·inv_freq_i:
//   y[i] = x_i·cos − x_{i+hd/2}·sin,   y[i+hd/2] = x_{i+hd/2}·cos + x_i·sin
// cs (S', hd/2), S' ≥ S: (cos, sin) of each angle, computed on the host in float64 and rounded once to float32
// (src/backend/webgpu/device.ts, ropeTable). Not on the GPU, because WGSL bounds the error of sin/cos only on
// [−π, π], and the angles reach S (SwiftShader's float32 cos/sin were off by 1.8e-4 at s < 64).
// One thread per rotated pair. SIGN = −1 rotates back (the backward, entry main with the override).
struct Dims { B: u32, S: u32, heads: u32, hd: u32 }
override SIGN: f32 = 1.0;
override ACCUMULATE: bool = false;
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<vec2<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let half = dims.hd / 2u;
  let idx = flat_id(gid, nwg); // (b, s, head, i), i < hd/2
  if (idx >= dims.B * dims.S * dims.heads * half) { return; }
  let i = idx % half;
  let row = idx / half;                    // (b, s, head)
  let s = (row / dims.heads) % dims.S;
  let angle = cs[s * half + i];
  let c = angle.x;
  let sn = SIGN * angle.y;
  let lo = row * dims.hd + i;
  let hi = lo + half;
  let a = x[lo];
  let b = x[hi];
  if (ACCUMULATE) {
    y[lo] += a * c - b * sn;
    y[hi] += b * c + a * sn;
  } else {
    y[lo] = a * c - b * sn;
    y[hi] = b * c + a * sn;
  }
}
