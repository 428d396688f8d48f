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
