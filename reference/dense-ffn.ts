// Dense feed-forward block (the MLP of a Llama layer), float64, forward and backward.
//
// Dimension legend:
//   T  tokens, d model dim (hidden_size), F hidden units (intermediate_size)
//
// Two families (parameter names as in Hugging Face Llama; Linear weights are (out, in)):
//   swiglu:              y = down_proj( silu(gate_proj x) ⊙ up_proj x )     gate_proj, up_proj (F, d); down_proj (d, F)
//   relu2 / relu / gelu: y = down_proj( act(up_proj x) )                     up_proj (F, d); down_proj (d, F)
// gelu is the exact erf form. The SMoE experts (smoe.ts) are this same block under Mixtral's names w1/w3/w2.
//
// Backward, in reverse order of the forward:
//   dh = dy·down            ddown += dyᵀ·h                       (h = hidden activation, (T, F))
//   swiglu: dgate_pre = dh ⊙ silu'(g) ⊙ u,  dup_pre = dh ⊙ silu(g);   else: dpre = dh ⊙ act'(pre)
//   dx += dpre·W (for each input projection),  dW += dpreᵀ·x

import { activationBackward, activationForward, swigluBackward, swigluForward } from './activations.ts';
import type { Params } from './common.ts';
import { linearBackward, linearForward } from './linear.ts';

export type DenseActivation = 'swiglu' | 'relu2' | 'relu' | 'gelu';

export interface DenseFfnConfig {
  d: number; // hidden_size
  F: number; // intermediate_size
  activation: DenseActivation;
}

/** The three projections by role; `gate` is null unless the activation is swiglu. */
export interface DenseFfnWeights {
  gate: Float64Array | null; // (F, d)
  up: Float64Array; // (F, d)
  down: Float64Array; // (d, F)
}

/** What forward saves for backward. */
export interface DenseFfnSaved {
  gatePre: Float64Array | null; // (T, F) gate_proj x, swiglu only (silu' needs it)
  upPre: Float64Array; // (T, F) up_proj x (the pre-activation for non-gated kinds)
  h: Float64Array; // (T, F) hidden activation fed to down_proj (ddown needs it)
}

/** Weights by role from a record with the Llama names. */
export function denseFfnWeights(cfg: DenseFfnConfig, p: Params): DenseFfnWeights {
  return {
    gate: cfg.activation === 'swiglu' ? p['gate_proj.weight'] : null,
    up: p['up_proj.weight'],
    down: p['down_proj.weight'],
  };
}

export function denseFfnForward(
  y: Float64Array, // (T, d) output
  x: Float64Array, // (T, d)
  w: DenseFfnWeights,
  cfg: DenseFfnConfig,
  T: number,
): DenseFfnSaved {
  const { d, F } = cfg;
  const upPre = new Float64Array(T * F); // (T, F)
  const h = new Float64Array(T * F); // (T, F)
  let gatePre: Float64Array | null = null;
  linearForward(upPre, x, w.up, null, T, d, F);
  if (cfg.activation === 'swiglu') {
    if (!w.gate) throw new Error('dense-ffn: swiglu needs gate_proj.weight');
    gatePre = new Float64Array(T * F); // (T, F)
    linearForward(gatePre, x, w.gate, null, T, d, F);
    swigluForward(h, gatePre, upPre, T * F);
  } else {
    activationForward(cfg.activation, h, upPre, T * F);
  }
  linearForward(y, h, w.down, null, T, F, d);
  return { gatePre, upPre, h };
}

/** Accumulates into dx (if not null) and into the weight gradients (any may be null). */
export function denseFfnBackward(
  dx: Float64Array | null, // (T, d)
  dw: { gate: Float64Array | null; up: Float64Array | null; down: Float64Array | null },
  dy: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  w: DenseFfnWeights,
  saved: DenseFfnSaved,
  cfg: DenseFfnConfig,
  T: number,
): void {
  const { d, F } = cfg;
  const dh = new Float64Array(T * F); // (T, F)
  linearBackward(dh, dw.down, null, dy, saved.h, w.down, T, F, d);
  const dUp = new Float64Array(T * F); // (T, F) gradient of up_proj x
  if (cfg.activation === 'swiglu') {
    const dGate = new Float64Array(T * F); // (T, F) gradient of gate_proj x
    swigluBackward(dGate, dUp, dh, saved.gatePre!, saved.upPre, T * F);
    linearBackward(dx, dw.gate, null, dGate, x, w.gate!, T, d, F);
  } else {
    activationBackward(cfg.activation, dUp, dh, saved.upPre, T * F);
  }
  linearBackward(dx, dw.up, null, dUp, x, w.up, T, d, F);
}

/** Record-keyed gradients by role (null where the record has no such entry). */
export function denseFfnGrads(g: Params | null): {
  gate: Float64Array | null;
  up: Float64Array | null;
  down: Float64Array | null;
} {
  return {
    gate: g?.['gate_proj.weight'] ?? null,
    up: g?.['up_proj.weight'] ?? null,
    down: g?.['down_proj.weight'] ?? null,
  };
}
