// Routing margins: how far a discrete decision (top-k selection, a ≥-threshold mask) sits from flipping.
//
// A fixture or a finite-difference check whose routing sits within a hair of a boundary tests rounding, not code:
// a perturbation of 1e-5 (finite differences) or a float32 rounding (a backend) could flip the decision. Test inputs
// and fixture generators therefore re-draw until every decision has a relative margin of at least MIN_MARGIN
// (FIXTURES.md "Routing boundaries"), and fixtures record the smallest one as `min_margin`.
//
// Relative gap of two scores a, b: |a − b| / max(|a|, |b|). For a top-k over a row, the decision boundary is between
// the k-th largest (last selected) and the (k+1)-th largest (first unselected) entry.

export const MIN_MARGIN = 1e-3;

/** |a − b| / max(|a|, |b|); 0 when a = b (including both 0). */
export function relGap(a: number, b: number): number {
  const scale = Math.max(Math.abs(a), Math.abs(b));
  return scale === 0 ? 0 : Math.abs(a - b) / scale;
}

/**
 * Smallest relative gap over rows between the k-th and (k+1)-th largest entries of each row of scores (N, C).
 * Infinity when k ≥ C (every entry is selected, nothing can flip).
 */
export function topkMargin(
  scores: Float64Array, // (N, C)
  N: number,
  C: number,
  k: number,
): number {
  if (k >= C) return Infinity;
  let min = Infinity;
  const row = new Float64Array(C); // (C) sorted copy of one row
  for (let n = 0; n < N; n++) {
    row.set(scores.subarray(n * C, n * C + C));
    row.sort(); // ascending
    min = Math.min(min, relGap(row[C - k], row[C - k - 1]));
  }
  return min;
}

/** Smallest relative gap between each entry of values (N, C) and its row's threshold (N), for `x ≥ τ` masks. */
export function thresholdMargin(
  values: Float64Array, // (N, C)
  thresholds: Float64Array, // (N)
  N: number,
  C: number,
): number {
  let min = Infinity;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) min = Math.min(min, relGap(values[n * C + c], thresholds[n]));
  return min;
}

/**
 * Draw until the margin of the draw is at least `min` (default MIN_MARGIN). Returns the draw and its margin; throws
 * after maxTries, naming the best margin reached, so that an impossible request fails loudly instead of looping.
 */
export function drawWithMargin<T>(
  draw: (attempt: number) => T,
  margin: (t: T) => number,
  min = MIN_MARGIN,
  maxTries = 200,
): { value: T; margin: number; attempts: number } {
  let best = -Infinity;
  for (let attempt = 0; attempt < maxTries; attempt++) {
    const value = draw(attempt);
    const m = margin(value);
    if (m >= min) return { value, margin: m, attempts: attempt + 1 };
    best = Math.max(best, m);
  }
  throw new Error(`drawWithMargin: no draw reached margin ${min} in ${maxTries} tries (best ${best})`);
}
