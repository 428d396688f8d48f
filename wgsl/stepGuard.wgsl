// stepGuard: the training step's decision, taken on the GPU so that nothing has to be read back per step.
// ctl holds the step-control slots (STEP in src/backend/kernels.ts) and the report the engine filled:
// ctl[8] = Σ loss over `accum` micro-batches, ctl[9] = squared norm of the summed gradient. With loss = ctl[8]/accum
// and ‖g‖ = sqrt(ctl[9])/accum:
//   both finite  → ctl[0] = clip factor min(1, clip/(‖g‖ + 1e-6)) (1 when clip = 0), ctl[1] = 0 (apply), ctl[3] = 0
//   otherwise    → ctl[0] = 0, ctl[1] = 1 (skip), ctl[2] += 1 (faults), ctl[3] += 1 (streak), ctl[4] = step when the
//                  streak starts here, ctl[5..7] = step, loss, ‖g‖ of this step.
// One thread. Finiteness is tested on the bit pattern (exponent all ones = NaN or ±Inf): WGSL lets a compiler assume
// floats are finite, so `x != x` or comparisons with infinity could be folded away.
struct Dims { accum: f32, clip: f32, step: f32 }
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read_write> ctl: array<f32>;

fn finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(1)
fn main() {
  let loss = ctl[8] / dims.accum;
  let norm = sqrt(ctl[9]) / dims.accum;
  // sqrt of a negative is NaN too, but a sum of squares is never negative; ctl[9] itself is tested as well so that
  // a NaN survives whatever the compiler does to sqrt.
  if (finite(loss) && finite(ctl[9]) && finite(norm)) {
    var scale = 1.0;
    if (dims.clip > 0.0) { scale = min(1.0, dims.clip / (norm + 1e-6)); }
    ctl[0] = scale;
    ctl[1] = 0.0;
    ctl[3] = 0.0;
    return;
  }
  ctl[0] = 0.0;
  ctl[1] = 1.0;
  ctl[2] = ctl[2] + 1.0;
  let streak = ctl[3] + 1.0;
  ctl[3] = streak;
  if (streak == 1.0) { ctl[4] = dims.step; }
  ctl[5] = dims.step;
  ctl[6] = loss;
  ctl[7] = norm;
}
