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

/** scratch: 2·k words. */
export function thresholdTopkMask(mask: usize, x: usize, rows: i32, n: i32, k: i32, scratch: usize): void {
  const vals = scratch, ids = scratch + (<usize>k << 2);
  for (let r = 0; r < rows; r++) {
    let cnt = 0;
    for (let j = 0; j < n; j++) cnt = topkOffer(vals, ids, k, cnt, ld(x, r * n + j), j);
    const tau = ld(vals, k - 1);
    for (let j = 0; j < n; j++) sti(mask, r * n + j, ld(x, r * n + j) >= tau ? 1 : 0);
  }
}
