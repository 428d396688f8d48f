// Memory and elementwise kernels, activations, the TopK α-blend and AdamW (src/backend/kernels.ts for semantics).
// Dimension legend: n elements; rows × cols for 2-D blocks.

import { addf, erfc, exp4, ld, ldi, st } from './common';

export function fill(x: usize, n: i32, value: f32): void {
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(x + (<usize>i << 2), v);
  for (; i < n; i++) st(x, i, value);
}

export function copyBlock(dst: usize, src: usize, rows: i32, cols: i32, dstLd: i32, srcLd: i32, dstOffset: i32,
  srcOffset: i32, accumulate: bool): void {
  for (let r = 0; r < rows; r++) {
    const d = dst + (<usize>(dstOffset + r * dstLd) << 2);
    const s = src + (<usize>(srcOffset + r * srcLd) << 2);
    if (!accumulate) {
      memory.copy(d, s, <usize>cols << 2);
      continue;
    }
    let c = 0;
    for (; c + 4 <= cols; c += 4) {
      const o = <usize>c << 2;
      v128.store(d + o, f32x4.add(v128.load(d + o), v128.load(s + o)));
    }
    for (; c < cols; c++) addf(d, c, ld(s, c));
  }
}

/** dst (n) = bfloat16 i of the packed pairs at `packed`, widened: the 16 bits become the upper half of a float32. */
export function widenBf16(dst: usize, packed: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(packed + (<usize>i << 1)); // 8 × u16
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
    v128.store(dst + (<usize>i << 2) + 16, i32x4.shl(i32x4.extend_high_i16x8_u(h), 16));
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(packed + (<usize>i << 1)) << 16);
}

export function axpby(y: usize, x: usize, n: i32, alpha: f32, beta: f32): void {
  const va = f32x4.splat(alpha), vb = f32x4.splat(beta);
  let i = 0;
  if (beta == 0) {
    for (; i + 4 <= n; i += 4) v128.store(y + (<usize>i << 2), f32x4.mul(va, v128.load(x + (<usize>i << 2))));
    for (; i < n; i++) st(y, i, alpha * ld(x, i));
    return;
  }
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(f32x4.mul(va, v128.load(x + o)), f32x4.mul(vb, v128.load(y + o))));
  }
  for (; i < n; i++) st(y, i, alpha * ld(x, i) + beta * ld(y, i));
}

export function addBias(y: usize, bias: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) copyBlock(y, bias, 1, cols, 0, 0, r * cols, 0, true);
}

/** out[c] += Σ_r x[r, c] for the columns c0 ≤ c < c1 (rows added in order: a column's sum ignores the split). */
export function colSum(out: usize, x: usize, rows: i32, cols: i32, c0: i32, c1: i32): void {
  for (let r = 0; r < rows; r++) copyBlock(out, x, 1, c1 - c0, 0, 0, c0, r * cols + c0, true);
}

export function sumSquares(out: usize, x: usize, n: i32, accumulate: bool): void {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <f64>ld(x, i);
    s += v * v;
  }
  st(out, 0, <f32>((accumulate ? <f64>ld(out, 0) : 0) + s));
}

// Activation kinds, numbered as the JS loader passes them.
export const RELU = 0, RELU2 = 1, GELU = 2, SILU = 3;

// @ts-ignore: decorator
@inline function sigmoid(x: f64): f64 {
  if (x >= 0) return 1.0 / (1.0 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1.0 + e);
}

export function act(kind: i32, x: f64): f64 {
  if (kind == RELU) return x > 0 ? x : 0;
  if (kind == RELU2) return x > 0 ? x * x : 0;
  if (kind == GELU) return 0.5 * x * erfc(-x * Math.SQRT1_2);
  return x * sigmoid(x);
}

export function actGrad(kind: i32, x: f64): f64 {
  if (kind == RELU) return x > 0 ? 1 : 0;
  if (kind == RELU2) return x > 0 ? 2 * x : 0;
  if (kind == GELU) return 0.5 * erfc(-x * Math.SQRT1_2) + x * 0.3989422804014327 * Math.exp(-0.5 * x * x);
  const s = sigmoid(x);
  return s * (1 + x * (1 - s));
}

/** Coefficients of erfc4 and the activations, in memory (see MATH_C in common.ts). */
const ACT_C: usize = memory.data<f32>([
  0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196, // 0–7
  1.00002368, -1.26551223, // 8–9
  0, 0.5, 1, 2, -0.7071067811865476, 0.3989422804014327, -0.5, // 10–16: 0, ½, 1, 2, −1/√2, 1/√(2π), −½
]);
// @ts-ignore: decorator
@inline function ac(i: i32): v128 {
  return v128.load32_splat(ACT_C + (<usize>i << 2));
}

/** erfc of four floats: the erfc formula above (Numerical Recipes' Chebyshev fit) in float32 lanes, with exp4. */
// @ts-ignore: decorator
@inline function erfc4(x: v128): v128 {
  const z = f32x4.abs(x);
  const t = f32x4.div(ac(12), f32x4.add(ac(12), f32x4.mul(ac(11), z)));
  let q = ac(0);
  for (let i = 1; i <= 8; i++) q = f32x4.add(f32x4.mul(q, t), ac(i));
  const e = f32x4.add(f32x4.sub(f32x4.mul(q, t), f32x4.mul(z, z)), ac(9));
  const r = f32x4.mul(t, exp4(e));
  return v128.bitselect(r, f32x4.sub(ac(13), r), f32x4.ge(x, ac(10)));
}

/** f(x) for four floats of one activation kind (float32 lanes; the scalar act() is the float64 definition). */
// @ts-ignore: decorator
@inline function act4(kind: i32, x: v128): v128 {
  if (kind == RELU) return f32x4.pmax(x, ac(10));
  if (kind == RELU2) {
    const r = f32x4.pmax(x, ac(10));
    return f32x4.mul(r, r);
  }
  if (kind == GELU) return f32x4.mul(f32x4.mul(ac(11), x), erfc4(f32x4.mul(x, ac(14))));
  return f32x4.mul(x, sigmoid4(x));
}

/** f'(x) for four floats. */
// @ts-ignore: decorator
@inline function actGrad4(kind: i32, x: v128): v128 {
  if (kind == RELU) return v128.and(f32x4.gt(x, ac(10)), ac(12));
  if (kind == RELU2) return f32x4.mul(ac(13), f32x4.pmax(x, ac(10)));
  if (kind == GELU) {
    const cdf = f32x4.mul(ac(11), erfc4(f32x4.mul(x, ac(14))));
    const pdf = f32x4.mul(ac(15), exp4(f32x4.mul(ac(16), f32x4.mul(x, x))));
    return f32x4.add(cdf, f32x4.mul(x, pdf));
  }
  const s = sigmoid4(x);
  return f32x4.mul(s, f32x4.add(ac(12), f32x4.mul(x, f32x4.sub(ac(12), s))));
}

export function activation(y: usize, x: usize, n: i32, kind: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, act4(kind, v128.load(x + o)));
  }
  for (; i < n; i++) st(y, i, <f32>act(kind, ld(x, i)));
}

export function activationBackward(dx: usize, dy: usize, x: usize, n: i32, kind: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(actGrad4(kind, v128.load(x + o)), v128.load(dy + o));
    v128.store(dx + o, f32x4.add(v128.load(dx + o), g));
  }
  for (; i < n; i++) addf(dx, i, <f32>(<f64>ld(dy, i) * actGrad(kind, ld(x, i))));
}

/** sigmoid of four floats: 1 / (1 + e^−x) with the 4-lane exp (saturates cleanly: e^−x clamps, 1/(1+big) → 0). */
// @ts-ignore: decorator
@inline function sigmoid4(x: v128): v128 {
  return f32x4.div(ac(12), f32x4.add(ac(12), exp4(f32x4.neg(x))));
}

export function swiglu(h: usize, g: usize, u: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    v128.store(h + o, f32x4.mul(f32x4.mul(gv, sigmoid4(gv)), v128.load(u + o)));
  }
  for (; i < n; i++) st(h, i, <f32>(act(SILU, ld(g, i)) * <f64>ld(u, i)));
}

export function swigluBackward(dg: usize, du: usize, dh: usize, g: usize, u: usize, n: i32): void {
  let i = 0;
  const one = f32x4.splat(1);
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o), d = v128.load(dh + o);
    const sg = sigmoid4(gv);
    // silu(g) = g·σ(g);  silu'(g) = σ(g)·(1 + g·(1 − σ(g)))
    const dsilu = f32x4.mul(sg, f32x4.add(one, f32x4.mul(gv, f32x4.sub(one, sg))));
    v128.store(dg + o, f32x4.add(v128.load(dg + o), f32x4.mul(f32x4.mul(d, v128.load(u + o)), dsilu)));
    v128.store(du + o, f32x4.add(v128.load(du + o), f32x4.mul(d, f32x4.mul(gv, sg))));
  }
  for (; i < n; i++) {
    const gi = <f64>ld(g, i), d = <f64>ld(dh, i);
    addf(dg, i, <f32>(d * <f64>ld(u, i) * actGrad(SILU, gi)));
    addf(du, i, <f32>(d * act(SILU, gi)));
  }
}

export function maskScale(y: usize, x: usize, mask: usize, n: i32, alpha: f32): void {
  for (let i = 0; i < n; i++) st(y, i, ld(x, i) * (alpha + (1 - alpha) * <f32>ldi(mask, i)));
}

// Slots of the step-control tensor: STEP in src/backend/kernels.ts (the kernel tests compare against the JS device,
// which uses STEP itself, so a mismatch here fails them).
const S_SCALE = 0, S_SKIP = 1, S_FAULTS = 2, S_STREAK = 3, S_STREAK_FROM = 4, S_LAST_STEP = 5, S_LAST_LOSS = 6;
const S_LAST_NORM = 7;
const S_LOSS = 8, S_NORM_SQ = 9;

/** The step decision (clip factor, or skip and count a fault) from the report in ctl; see stepGuard in the contract. */
export function stepGuard(ctl: usize, accum: f64, clip: f64, step: f64): void {
  const loss = <f64>ld(ctl, S_LOSS) / accum;
  const norm = Math.sqrt(<f64>ld(ctl, S_NORM_SQ)) / accum;
  if (isFinite(loss) && isFinite(norm)) {
    st(ctl, S_SCALE, clip > 0 ? <f32>Math.min(1, clip / (norm + 1e-6)) : 1);
    st(ctl, S_SKIP, 0);
    st(ctl, S_STREAK, 0);
    return;
  }
  st(ctl, S_SCALE, 0);
  st(ctl, S_SKIP, 1);
  st(ctl, S_FAULTS, ld(ctl, S_FAULTS) + 1);
  const streak = ld(ctl, S_STREAK) + 1;
  st(ctl, S_STREAK, streak);
  if (streak == 1) st(ctl, S_STREAK_FROM, <f32>step);
  st(ctl, S_LAST_STEP, <f32>step);
  st(ctl, S_LAST_LOSS, <f32>loss);
  st(ctl, S_LAST_NORM, <f32>norm);
}

/** dst = src (n elements) when cond[at] ≠ 0 (BatchNorm statistics restored after a skipped step). */
export function copyIf(dst: usize, src: usize, cond: usize, n: i32, at: i32): void {
  if (ld(cond, at) == 0) return;
  memory.copy(dst, src, <usize>n << 2);
}

/**
 * AdamW, every element in float64: two elements at a time in float64x2 lanes, the same operations in the same order
 * as the scalar tail, so every element gets the same bits either way.
 */
export function adamw(p: usize, g: usize, m: usize, v: usize, ctl: usize, n: i32, lr: f64, beta1: f64, beta2: f64,
  eps: f64, weightDecay: f64, step: i32, gradScale: f64): void {
  if (ld(ctl, S_SKIP) != 0) return; // a skipped step (stepGuard): parameters and moments stay as they are
  const scale = gradScale * <f64>ld(ctl, S_SCALE);
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
  const lrwd = lr * weightDecay, c1 = 1 - beta1, c2 = 1 - beta2;
  const vScale = f64x2.splat(scale), vLrwd = f64x2.splat(lrwd), vB1 = f64x2.splat(beta1), vB2 = f64x2.splat(beta2);
  const vC1 = f64x2.splat(c1), vC2 = f64x2.splat(c2), vLr = f64x2.splat(lr), vBc1 = f64x2.splat(bc1);
  const vBc2 = f64x2.splat(bc2), vEps = f64x2.splat(eps);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    for (let half = 0; half < 2; half++) {
      const off = o + (<usize>half << 3);
      const gi = f64x2.mul(f64x2.promote_low_f32x4(v128.load64_zero(g + off)), vScale);
      let pi = f64x2.promote_low_f32x4(v128.load64_zero(p + off));
      pi = f64x2.sub(pi, f64x2.mul(vLrwd, pi));
      const mi = f64x2.add(f64x2.mul(vB1, f64x2.promote_low_f32x4(v128.load64_zero(m + off))), f64x2.mul(vC1, gi));
      const v0 = f64x2.promote_low_f32x4(v128.load64_zero(v + off));
      const vi = f64x2.add(f64x2.mul(vB2, v0), f64x2.mul(f64x2.mul(vC2, gi), gi));
      v128.store64_lane(m + off, f32x4.demote_f64x2_zero(mi), 0);
      v128.store64_lane(v + off, f32x4.demote_f64x2_zero(vi), 0);
      const upd = f64x2.div(f64x2.mul(vLr, f64x2.div(mi, vBc1)), f64x2.add(f64x2.sqrt(f64x2.div(vi, vBc2)), vEps));
      v128.store64_lane(p + off, f32x4.demote_f64x2_zero(f64x2.sub(pi, upd)), 0);
    }
  }
  for (; i < n; i++) {
    const gi = <f64>ld(g, i) * scale;
    let pi = <f64>ld(p, i);
    pi -= lrwd * pi;
    const mi = beta1 * <f64>ld(m, i) + c1 * gi;
    const vi = beta2 * <f64>ld(v, i) + c2 * gi * gi;
    st(m, i, <f32>mi);
    st(v, i, <f32>vi);
    st(p, i, <f32>(pi - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps)));
  }
}

/** fill for int32 tensors (indices, masks). */
export function fillI32(x: usize, n: i32, value: i32): void {
  for (let i = 0; i < n; i++) store<i32>(x + (<usize>i << 2), value);
}
