// Memory access helpers shared by every kernel file. Tensors are flat float32/int32 arrays in linear memory,
// passed as byte addresses (usize); element i of a tensor at p lives at p + 4·i.

// @ts-ignore: decorator
@inline export function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline export function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}
// @ts-ignore: decorator
@inline export function ldi(p: usize, i: i32): i32 {
  return load<i32>(p + (<usize>i << 2));
}
// @ts-ignore: decorator
@inline export function sti(p: usize, i: i32, v: i32): void {
  store<i32>(p + (<usize>i << 2), v);
}
// @ts-ignore: decorator
@inline export function addf(p: usize, i: i32, v: f32): void {
  const a = p + (<usize>i << 2);
  store<f32>(a, load<f32>(a) + v);
}

/** erfc(x), fractional error < 1.2e-7 (Numerical Recipes' Chebyshev fit; the same formula as src/backend/js). */
export function erfc(x: f64): f64 {
  const z = Math.abs(x);
  const t = 1.0 / (1.0 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2.0 - r;
}

/**
 * Top-k insertion buffer in scratch memory: vals (k f32) at `vals`, ids (k i32) at `ids`, `count` entries filled.
 * Offers v with id; keeps the k best (value descending, equal values → lower id first: the project's one tie
 * rule), in order; returns the new count. (Plain functions on caller memory: the kernels never allocate, since the
 * JS loader owns all memory above __heap_base.)
 */
export function topkOffer(vals: usize, ids: usize, k: i32, count: i32, v: f32, id: i32): i32 {
  let pos = count;
  if (pos == k) {
    const lv = ld(vals, k - 1), li = ldi(ids, k - 1);
    if (!(v > lv || (v == lv && id < li))) return count;
    pos = k - 1;
  } else {
    count++;
  }
  while (pos > 0) {
    const pv = ld(vals, pos - 1), pi = ldi(ids, pos - 1);
    if (!(v > pv || (v == pv && id < pi))) break;
    st(vals, pos, pv);
    sti(ids, pos, pi);
    pos--;
  }
  st(vals, pos, v);
  sti(ids, pos, id);
  return count;
}

/** dst[0..n) += alpha·src[0..n), f32x4 lanes plus a scalar tail. */
// @ts-ignore: decorator
@inline export function axpyf(dst: usize, src: usize, alpha: f32, n: i32): void {
  let c = 0;
  const va = f32x4.splat(alpha);
  for (; c + 4 <= n; c += 4) {
    const o = <usize>c << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(va, v128.load(src + o))));
  }
  for (; c < n; c++) addf(dst, c, alpha * ld(src, c));
}

/** Σ_c a[c]·b[c] for c < n, f32x4 lanes plus a scalar tail. */
// @ts-ignore: decorator
@inline export function dotf(a: usize, b: usize, n: i32): f32 {
  let c = 0;
  let acc = f32x4.splat(0);
  for (; c + 4 <= n; c += 4) {
    const o = <usize>c << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + o), v128.load(b + o)));
  }
  let s = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) +
    f32x4.extract_lane(acc, 3);
  for (; c < n; c++) s += ld(a, c) * ld(b, c);
  return s;
}

/**
 * Constants of the SIMD math below, in memory: a v128.const inside a loop is rebuilt by V8 on every iteration (a
 * few instructions each, dozens per exp4), while a splat load from memory is one instruction.
 */
const MATH_C: usize = memory.data<f32>([
  88.3762626647949, -87.3365447504019, 1.44269504088896341, 0.5, // 0–3: exp4 clamp, log2(e), rounding
  0.693359375, -2.12194440e-4, // 4–5: ln 2 in two parts
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, // 6–11
  1, 12582912, // 12: 1;  13: 1.5·2²³, whose float32 bits hold a small integer added to it in the low mantissa
]);
const MATH_I: usize = memory.data<i32>([127 - 0x4b400000]); // the exponent bias, less the bits of 1.5·2²³

/** Splat of MATH_C[i]. */
// @ts-ignore: decorator
@inline export function mathC(i: i32): v128 {
  return v128.load32_splat(MATH_C + (<usize>i << 2));
}

/**
 * exp of four floats at once (Cephes' expf: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r, and
 * 2^n built in the exponent bits). Relative error ≈ 2e-7 over the float32 range; inputs below −87.3 give ~0
 * (softmax inputs are max-subtracted, so ≤ 0).
 */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // pmin/pmax (one instruction each; NaN still propagates here) rather than min/max (a long sequence in V8)
  x = f32x4.pmax(f32x4.pmin(x, mathC(0)), mathC(1));
  const fx = f32x4.floor(f32x4.add(f32x4.mul(x, mathC(2)), mathC(3)));
  x = f32x4.sub(x, f32x4.mul(fx, mathC(4)));
  x = f32x4.sub(x, f32x4.mul(fx, mathC(5)));
  let y = mathC(6);
  y = f32x4.add(f32x4.mul(y, x), mathC(7));
  y = f32x4.add(f32x4.mul(y, x), mathC(8));
  y = f32x4.add(f32x4.mul(y, x), mathC(9));
  y = f32x4.add(f32x4.mul(y, x), mathC(10));
  y = f32x4.add(f32x4.mul(y, x), mathC(11));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(x, x)), x), mathC(12));
  // 2^n: n = fx (an integer in [−126, 128]) read from the mantissa of fx + 1.5·2²³, plus the bias, into the exponent
  const pow2n = i32x4.shl(i32x4.add(f32x4.add(fx, mathC(13)), v128.load32_splat(MATH_I)), 23);
  return f32x4.mul(y, pow2n);
}

/**
 * p[j] = exp(x[j] − shift) for j < n (x and p may be the same array); returns Σ_j p[j] (in float64).
 */
export function expShiftSum(p: usize, x: usize, shift: f32, n: i32): f64 {
  const vs = f32x4.splat(shift);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const e = exp4(f32x4.sub(v128.load(x + o), vs));
    v128.store(p + o, e);
    acc = f32x4.add(acc, e);
  }
  let s: f64 = <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) +
    <f64>f32x4.extract_lane(acc, 3);
  for (; j < n; j++) {
    const e = <f32>Math.exp(<f64>(ld(x, j) - shift));
    st(p, j, e);
    s += <f64>e;
  }
  return s;
}
