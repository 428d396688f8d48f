// Kernel cases for the step-decision kernels (stepGuard, copyIf, and adamw with its step-control tensor), shared by
// test/wasm-kernels.test.ts and test/webgpu-kernels.test.ts (not a test file itself). Every case is compared with
// the JS device there; test/step-guard.test.ts checks the JS device itself against closed forms.

import { STEP } from '../src/backend/kernels.ts';
import type { KernelCase } from './kernel-cases.ts';

/** A step-control tensor (STEP.size) with the given slots set, the rest 0. */
export function ctlWith(slots: Partial<Record<keyof typeof STEP, number>>): Float32Array {
  const c = new Float32Array(STEP.size);
  for (const [k, v] of Object.entries(slots)) c[STEP[k as keyof typeof STEP]] = v!;
  return c;
}

/**
 * The cases. (The comparison treats NaN as equal to NaN but not ±Inf to ±Inf, so non-finite inputs here are NaN;
 * infinities are covered in test/step-guard.test.ts.)
 */
export function stepKernelCases(rand: (n: number, lo?: number, hi?: number) => Float32Array, n: number): KernelCase[] {
  const c: KernelCase[] = [];
  const g = (accum: number, clip: number, step: number) => ({ accum, clip, step });
  c.push({
    kernel: 'stepGuard',
    label: 'clip active',
    args: [ctlWith({ loss: 5.2, normSq: 36, faults: 3, streakFrom: 4, lastStep: 6, lastLoss: 7, lastNorm: 8 })],
    s: g(2, 1, 9),
  });
  c.push({
    kernel: 'stepGuard',
    label: 'clip inactive, accum 1',
    args: [ctlWith({ loss: 2.5, normSq: 0.25 })],
    s: g(1, 1, 3),
  });
  c.push({
    kernel: 'stepGuard',
    label: 'clip off',
    args: [ctlWith({ loss: 2.5, normSq: 400, streak: 2, faults: 2 })],
    s: g(1, 0, 3),
  });
  c.push({
    kernel: 'stepGuard',
    label: 'NaN loss starts a streak',
    args: [ctlWith({ loss: NaN, normSq: 4, faults: 1 })],
    s: g(2, 1, 11),
  });
  c.push({
    kernel: 'stepGuard',
    label: 'NaN norm continues a streak',
    args: [ctlWith({ loss: 3, normSq: NaN, faults: 5, streak: 2, streakFrom: 12, lastStep: 13 })],
    s: g(1, 1, 14),
  });
  c.push({
    kernel: 'copyIf',
    label: 'skipped: copied',
    args: [rand(n), rand(n), ctlWith({ skip: 1 })],
    s: { n, at: STEP.skip },
  });
  c.push({
    kernel: 'copyIf',
    label: 'applied: untouched',
    args: [rand(n), rand(n), ctlWith({ skip: 0, scale: 1 })],
    s: { n, at: STEP.skip },
  });
  const hp = { n, lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 5, gradScale: 0.5 };
  c.push({
    kernel: 'adamw',
    label: 'applied, clip factor 0.7',
    args: [rand(n), rand(n), rand(n, -0.1, 0.1), rand(n, 0, 0.1), ctlWith({ scale: 0.7 })],
    s: hp,
  });
  c.push({
    kernel: 'adamw',
    label: 'skipped: nothing written',
    args: [rand(n), rand(n), rand(n, -0.1, 0.1), rand(n, 0, 0.1), ctlWith({ skip: 1 })],
    s: hp,
  });
  return c;
}
