// Finite-difference helpers shared by the Monet and PEER reference tests (not a test file itself).

import * as assert from 'uvu/assert';
import { numericGrad, relError } from '../reference/gradcheck.ts';
import { Rng } from '../reference/rng.ts';
import type { TensorMap } from '../src/tensor.ts';

export const FD_TOL = 1e-6;

/** Indices to check in a tensor of n entries: all of them when n ≤ max, else `max` spread over the tensor. */
export function sampleIndices(n: number, max: number, seed = 1): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(seed + n);
  const out = new Set<number>([0, n - 1]);
  while (out.size < max) out.add(rng.int(n));
  return [...out].sort((a, b) => a - b);
}

/**
 * Compare analytic gradients with central differences of f for each named tensor (tensor-relative error,
 * gradcheck.ts relError) and assert each is ≤ tol. f must recompute the objective from the tensors' current values.
 */
export function checkGrads(
  label: string,
  f: () => number,
  tensors: Record<string, Float64Array>,
  analytic: Record<string, Float64Array>,
  opts: { maxEntries?: number; tol?: number; h?: number; mayBeZero?: readonly string[] } = {},
): Record<string, number> {
  const errs: Record<string, number> = {};
  for (const [name, theta] of Object.entries(tensors)) {
    const a = analytic[name];
    assert.ok(a, `${label}: no analytic gradient for ${name}`);
    assert.is(a.length, theta.length, `${label}: gradient of ${name} has the wrong size`);
    const idx = sampleIndices(theta.length, opts.maxEntries ?? 1e9);
    const num = numericGrad(f, theta, idx, opts.h ?? 1e-5);
    const e = relError(a, num, idx);
    errs[name] = e;
    assert.ok(
      e <= (opts.tol ?? FD_TOL),
      `${label}: ∂L/∂${name} relative error ${e.toExponential(2)} > ${opts.tol ?? FD_TOL}`,
    );
    let maxA = 0;
    for (const i of idx) maxA = Math.max(maxA, Math.abs(a[i]));
    if (!opts.mayBeZero?.includes(name))
      assert.ok(
        maxA > 0,
        `${label}: ∂L/∂${name} is identically zero on the checked entries (a check that cannot fail)`,
      );
  }
  return errs;
}

/** Σ a ⊙ b. */
export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** max |a − b| / max(max |b|, 1e-300). */
export function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return m / Math.max(s, 1e-300);
}

export function arraysEqual(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A real output tensor's data from a case result, or a failed assertion naming it. */
export function D(out: TensorMap, name: string): Float64Array {
  const t = out.get(name);
  assert.ok(t, `missing output ${name}`);
  assert.is(t.dtype, 'F64', `${name}: dtype`);
  return t.data as Float64Array;
}
