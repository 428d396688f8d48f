// Shared helpers, prepended to every kernel file by src/backend/webgpu/device.ts (WGSL has no #include).
//
// Flat indexing: 1-D launches fold their workgroups into (x, y) past the 65535-per-dimension limit, so a thread's
// flat index is gid.x + gid.y · (num_workgroups.x · 256) for the 256-wide workgroups used throughout.

const WG: u32 = 256u;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// Activation codes, the same numbering as ACT_CODES in device.ts.
const ACT_RELU: u32 = 0u;
const ACT_RELU2: u32 = 1u;
const ACT_GELU: u32 = 2u;
const ACT_SILU: u32 = 3u;

// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, below float32 resolution near 1); WGSL has no erf builtin.
fn erf_f32(x: f32) -> f32 {
  let ax = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  let y = 1.0 - poly * exp(-ax * ax);
  return select(y, -y, x < 0.0);
}

fn sigmoid_f32(x: f32) -> f32 {
  return 1.0 / (1.0 + exp(-x));
}

fn act_f(kind: u32, x: f32) -> f32 {
  switch kind {
    case 0u: { return max(x, 0.0); }
    case 1u: { let r = max(x, 0.0); return r * r; }
    case 2u: { return 0.5 * x * (1.0 + erf_f32(x * 0.7071067811865476)); }
    default: { return x * sigmoid_f32(x); }
  }
}

// f'(x); relu'(0) = 0 as in PyTorch.
fn act_df(kind: u32, x: f32) -> f32 {
  switch kind {
    case 0u: { return select(0.0, 1.0, x > 0.0); }
    case 1u: { return 2.0 * max(x, 0.0); }
    case 2u: {
      let cdf = 0.5 * (1.0 + erf_f32(x * 0.7071067811865476));
      return cdf + x * 0.3989422804014327 * exp(-0.5 * x * x);
    }
    default: { let s = sigmoid_f32(x); return s * (1.0 + x * (1.0 - s)); }
  }
}

// Workgroup reductions for the 64-thread row kernels (softmax, RMSNorm, BatchNorm statistics, Monet routing): every
// thread passes its partial value and gets the total back. Call them from workgroup-uniform control flow only.
// Each opens AND closes with a barrier: on Mesa's GL path (through Dawn) a thread was seen to overwrite the scratch
// array for the next reduction before every thread had read the previous result, so a kernel running two
// reductions in a row (max then sum, mean then variance) got a wrong second one.
var<workgroup> wg_red64: array<f32, 64>;

fn wg_sum64(tid: u32, v: f32) -> f32 {
  workgroupBarrier();
  wg_red64[tid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (tid < s) { wg_red64[tid] += wg_red64[tid + s]; }
    workgroupBarrier();
  }
  let total = wg_red64[0];
  workgroupBarrier();
  return total;
}

fn wg_max64(tid: u32, v: f32) -> f32 {
  workgroupBarrier();
  wg_red64[tid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (tid < s) { wg_red64[tid] = max(wg_red64[tid], wg_red64[tid + s]); }
    workgroupBarrier();
  }
  let total = wg_red64[0];
  workgroupBarrier();
  return total;
}
