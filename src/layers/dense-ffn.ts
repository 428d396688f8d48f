// Dense feed-forward block on a Device (float32), forward and backward — the twin of reference/dense-ffn.ts.
//
// Dimension legend: T tokens, d model dim (hidden_size), F hidden units (intermediate_size)
//
//   swiglu:              y = down( silu(gate x) ⊙ up x )      gate, up (F, d); down (d, F)
//   relu2 / relu / gelu: y = down( act(up x) )                up (F, d); down (d, F)
// The SMoE experts (smoe.ts) are the same block under Mixtral's names, run grouped per expert.

import type { Scope } from '../backend/device.ts';
import type { F32 } from '../backend/kernels.ts';
import type { DenseFfnConfig } from '../../reference/dense-ffn.ts';
import { linearBackward, linearForward } from './common.ts';

/** The reference's config type (hidden_size, intermediate_size, activation), read by src/kinds/dense-ffn.ts. */
export type { DenseActivation, DenseFfnConfig } from '../../reference/dense-ffn.ts';

/** The three projections by role; `gate` is null unless the activation is swiglu. */
export interface DenseFfnWeights {
  gate: F32 | null; // (F, d)
  up: F32; // (F, d)
  down: F32; // (d, F)
}
export interface DenseFfnGrads {
  gate: F32 | null;
  up: F32 | null;
  down: F32 | null;
}

/** What forward saves for backward. */
export interface DenseFfnSaved {
  gatePre: F32 | null; // (T, F) gate x (swiglu only: silu' needs it)
  upPre: F32; // (T, F) up x (the pre-activation of the non-gated kinds)
  h: F32; // (T, F) hidden activation, the input of down (ddown needs it)
}

export function denseFfnForward(
  sc: Scope,
  y: F32,
  x: F32,
  w: DenseFfnWeights,
  cfg: DenseFfnConfig,
  T: number,
): DenseFfnSaved {
  const k = sc.dev.kernels;
  const { d, F } = cfg;
  const upPre = sc.f32(T * F); // (T, F)
  const h = sc.f32(T * F); // (T, F)
  linearForward(k, upPre, x, w.up, null, T, d, F);
  let gatePre: F32 | null = null;
  if (cfg.activation === 'swiglu') {
    if (!w.gate) throw new Error('dense-ffn (swiglu): expected gate_proj.weight, found none');
    gatePre = sc.f32(T * F); // (T, F)
    linearForward(k, gatePre, x, w.gate, null, T, d, F);
    k.swiglu(h, gatePre, upPre, { n: T * F });
  } else {
    k.activation(h, upPre, { n: T * F, kind: cfg.activation });
  }
  linearForward(k, y, h, w.down, null, T, F, d);
  return { gatePre, upPre, h };
}

/** Backward (accumulates into dx and the non-null gradients). */
export function denseFfnBackward(
  sc: Scope,
  dx: F32 | null,
  g: DenseFfnGrads,
  dy: F32,
  x: F32,
  w: DenseFfnWeights,
  saved: DenseFfnSaved,
  cfg: DenseFfnConfig,
  T: number,
): void {
  const k = sc.dev.kernels;
  const { d, F } = cfg;
  const dh = sc.f32(T * F); // (T, F)
  linearBackward(k, dh, g.down, null, dy, saved.h, w.down, T, F, d);
  const dUp = sc.f32(T * F); // (T, F) gradient of up x
  if (cfg.activation === 'swiglu') {
    const dGate = sc.f32(T * F); // (T, F) gradient of gate x
    k.swigluBackward(dGate, dUp, dh, saved.gatePre!, saved.upPre, { n: T * F });
    linearBackward(k, dx, g.gate, null, dGate, x, w.gate!, T, d, F);
  } else {
    k.activationBackward(dUp, dh, saved.upPre, { n: T * F, kind: cfg.activation });
  }
  linearBackward(k, dx, g.up, null, dUp, x, w.up, T, d, F);
}
