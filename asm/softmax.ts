// Softmax over rows, its backward, top-k selection and the TopK threshold mask.
// Dimension legend: rows × n, k selected per row.
// Tie rule (one rule everywhere): top-k lists are descending, equal values → lower index first; the threshold
// mask x ≥ τ_k keeps every tied entry.

import { addf, expShiftSum, ld, ldi, st, sti, topkOffer } from './common';

export function softmaxRows(y: usize, x: usize, rows: i32, n: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let mx: f32 = -Infinity;
    for (let j = 0; j < n; j++) mx = max(mx, ld(x, o + j));
    const inv = <f32>(1.0 / expShiftSum(y + (<usize>o << 2), x + (<usize>o << 2), mx, n));
    for (let j = 0; j < n; j++) st(y, o + j, ld(y, o + j) * inv);
  }
}

export function softmaxBackward(dx: usize, y: usize, dy: usize, rows: i32, n: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let dot: f64 = 0;
    for (let j = 0; j < n; j++) dot += <f64>ld(y, o + j) * <f64>ld(dy, o + j);
    for (let j = 0; j < n; j++) addf(dx, o + j, <f32>(<f64>ld(y, o + j) * (<f64>ld(dy, o + j) - dot)));
  }
}

/** scratch: 2·k words. */
export function topkRows(idx: usize, val: usize, x: usize, rows: i32, n: i32, k: i32, scratch: usize): void {
  const vals = scratch, ids = scratch + (<usize>k << 2);
  for (let r = 0; r < rows; r++) {
    let cnt = 0;
    for (let j = 0; j < n; j++) cnt = topkOffer(vals, ids, k, cnt, ld(x, r * n + j), j);
    for (let s = 0; s < k; s++) {
      sti(idx, r * k + s, ldi(ids, s));
      st(val, r * k + s, ld(vals, s));
    }
  }
}

export function topkRowsBackward(dx: usize, dval: usize, idx: usize, rows: i32, n: i32, k: i32): void {
  for (let r = 0; r < rows; r++) for (let s = 0; s < k; s++) addf(dx, r * n + ldi(idx, r * k + s), ld(dval, r * k + s));
}

/**
 * mask[r, j] = x[r, j] ≥ τ_r, τ_r the k-th largest value of row r. scratch: thresholdScratchWords(k, n) words.
 *
 * τ by a lower bound first (rows of at least 4·g values, g = k rounded up to 4 lanes): split the row into chunks
 * of g consecutive values and take, lane by lane, the maximum over the chunks: g maxima, g distinct entries of the
 * row, so at least k entries are ≥ lb, the k-th largest maximum, and τ ≥ lb. The entries ≥ lb (a few k on
 * typical rows) are copied out and τ is selected among them (quickselect): the k largest values of the row are all
 * there, so it is the same τ, and the same mask. A NaN among the maxima sends the row through the plain top-k
 * insertion over every entry (NaN entries outside the chunks cannot change τ: by then k entries are held).
 */
export function thresholdTopkMask(mask: usize, x: usize, rows: i32, n: i32, k: i32, scratch: usize): void {
  const g = (k + 3) & ~3;
  const vals = scratch, ids = scratch + (<usize>k << 2), maxima = ids + (<usize>k << 2);
  const candidates = maxima + (<usize>g << 2);
  for (let r = 0; r < rows; r++) {
    const row = x + (<usize>(r * n) << 2);
    const lb: f32 = n >= 4 * g ? chunkMaximaBound(row, n, g, k, maxima, vals, ids) : NaN;
    const tau = lb == lb ? kthLargestAbove(row, n, k, lb, candidates) : kthLargestInsertion(row, n, k, vals, ids);
    thresholdRow(mask + (<usize>(r * n) << 2), row, n, tau);
  }
}

/** Scratch words thresholdTopkMask needs: vals and ids (k each), the chunk maxima (k rounded up to 4), n candidates. */
export function thresholdScratchWords(k: i32, n: i32): i32 {
  return 2 * k + ((k + 3) & ~3) + n;
}

/** The k-th largest of the g lane-wise chunk maxima of a row (NaN when a maximum is NaN): a lower bound of τ. */
function chunkMaximaBound(row: usize, n: i32, g: i32, k: i32, maxima: usize, vals: usize, ids: usize): f32 {
  const chunks = n / g;
  for (let q = 0; q < g; q += 4) {
    let m = v128.load(row + (<usize>q << 2));
    for (let c = 1; c < chunks; c++) m = f32x4.max(m, v128.load(row + (<usize>(c * g + q) << 2)));
    v128.store(maxima + (<usize>q << 2), m);
  }
  let lb: f32 = Infinity;
  for (let q = 0; q < g; q++) {
    const m = ld(maxima, q);
    if (m != m) return NaN;
    lb = min(lb, m);
  }
  if (g == k) return lb;
  let cnt = 0;
  for (let q = 0; q < g; q++) cnt = topkOffer(vals, ids, k, cnt, ld(maxima, q), q);
  return ld(vals, k - 1);
}

/** The k-th largest value of a row by top-k insertion over every entry (the tie and NaN behaviour of topkRows). */
function kthLargestInsertion(row: usize, n: i32, k: i32, vals: usize, ids: usize): f32 {
  let cnt = 0;
  for (let j = 0; j < n; j++) cnt = topkOffer(vals, ids, k, cnt, ld(row, j), j);
  return ld(vals, k - 1);
}

/** The k-th largest value of a row, given a lower bound lb ≤ it: the entries ≥ lb copied out, then selected. */
function kthLargestAbove(row: usize, n: i32, k: i32, lb: f32, buf: usize): f32 {
  const vlb = f32x4.splat(lb);
  let m = 0;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    if (!v128.any_true(f32x4.ge(v128.load(row + (<usize>j << 2)), vlb))) continue;
    for (let i = j; i < j + 4; i++) {
      const v = ld(row, i);
      if (v >= lb) st(buf, m++, v);
    }
  }
  for (; j < n; j++) {
    const v = ld(row, j);
    if (v >= lb) st(buf, m++, v);
  }
  return selectDescending(buf, m, k - 1);
}

/** The value at position `target` of buf[0..m) sorted descending (Hoare's selection, median-of-three pivots). */
function selectDescending(buf: usize, m: i32, target: i32): f32 {
  let lo = 0, hi = m - 1;
  while (lo < hi) {
    const a = ld(buf, lo), b = ld(buf, lo + ((hi - lo) >> 1)), c = ld(buf, hi);
    const pivot = max(min(a, b), min(max(a, b), c));
    let i = lo, j = hi;
    while (i <= j) {
      while (ld(buf, i) > pivot) i++;
      while (ld(buf, j) < pivot) j--;
      if (i <= j) {
        const t = ld(buf, i);
        st(buf, i++, ld(buf, j));
        st(buf, j--, t);
      }
    }
    // buf[lo..j] ≥ pivot ≥ buf[i..hi], and every entry between j and i equals the pivot
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot;
  }
  return ld(buf, lo);
}

/** mask[j] = x[j] ≥ τ (1 or 0), four lanes at a time. */
function thresholdRow(mask: usize, row: usize, n: i32, tau: f32): void {
  const vt = f32x4.splat(tau), one = i32x4.splat(1);
  let j = 0;
  for (; j + 4 <= n; j += 4)
    v128.store(mask + (<usize>j << 2), v128.and(f32x4.ge(v128.load(row + (<usize>j << 2)), vt), one));
  for (; j < n; j++) sti(mask, j, ld(row, j) >= tau ? 1 : 0);
}
