// Elementwise activations and the SwiGLU gate, float64, forward and backward.
//
// Dimension legend:
//   n  number of elements (any shape, flattened)
//
//   relu(x)  = max(x, 0)                      relu'(x)  = 1{x > 0}   (0 at x = 0, as PyTorch)
//   relu2(x) = max(x, 0)²   ("squared ReLU")  relu2'(x) = 2·max(x, 0)
//   gelu(x)  = x·Φ(x) = x/2·(1 + erf(x/√2))   gelu'(x)  = Φ(x) + x·φ(x)   (the exact erf form, not the tanh one)
//   silu(x)  = x·σ(x)                         silu'(x)  = σ(x)·(1 + x·(1 − σ(x)))
//   swiglu(gate, up) = silu(gate) ⊙ up        (Llama / Mixtral gated FFN: silu(W1 x) ⊙ (W3 x))
//
// Saved state: the INPUT of the activation (pre-activation); every derivative above is a function of it.
// Φ and φ come from ./normal.ts, whose erfc is accurate to ~1e-14 relative (a positive-term series for erf below
// 1.5, a continued fraction for erfc from 1.5 on), so gelu keeps full float64 precision in both tails (Φ(x) for x ≪ 0
// is computed as ½·erfc(−x/√2), never as 1 − something).

import { normalCdf, normalPdf } from './normal.ts';

export type Activation = 'relu' | 'relu2' | 'gelu' | 'silu';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'relu2', 'gelu', 'silu'];

function sigmoid(x: number): number {
  // Two branches so that exp() never overflows.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** The activation of one value. */
export function act(kind: Activation, x: number): number {
  switch (kind) {
    case 'relu':
      return Math.max(x, 0);
    case 'relu2':
      return x > 0 ? x * x : 0;
    case 'gelu':
      return x * normalCdf(x);
    case 'silu':
      return x * sigmoid(x);
  }
}

/** Its derivative at x. */
export function actGrad(kind: Activation, x: number): number {
  switch (kind) {
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'relu2':
      return x > 0 ? 2 * x : 0;
    case 'gelu':
      return normalCdf(x) + x * normalPdf(x);
    case 'silu': {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
  }
}

export function activationForward(
  kind: Activation,
  out: Float64Array, // (n)
  inp: Float64Array, // (n) pre-activation
  n: number,
): void {
  for (let i = 0; i < n; i++) out[i] = act(kind, inp[i]);
}

/** dinp += act'(inp) ⊙ dout. */
export function activationBackward(
  kind: Activation,
  dinp: Float64Array, // (n)
  dout: Float64Array, // (n)
  inp: Float64Array, // (n) the saved pre-activation
  n: number,
): void {
  for (let i = 0; i < n; i++) dinp[i] += actGrad(kind, inp[i]) * dout[i];
}

/** out = silu(gate) ⊙ up. */
export function swigluForward(
  out: Float64Array, // (n)
  gate: Float64Array, // (n) W1·x
  up: Float64Array, // (n) W3·x
  n: number,
): void {
  for (let i = 0; i < n; i++) out[i] = act('silu', gate[i]) * up[i];
}

/** dgate += silu'(gate) ⊙ up ⊙ dout;  dup += silu(gate) ⊙ dout. */
export function swigluBackward(
  dgate: Float64Array, // (n)
  dup: Float64Array, // (n)
  dout: Float64Array, // (n)
  gate: Float64Array, // (n) saved
  up: Float64Array, // (n) saved
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    dgate[i] += actGrad('silu', gate[i]) * up[i] * dout[i];
    dup[i] += act('silu', gate[i]) * dout[i];
  }
}
