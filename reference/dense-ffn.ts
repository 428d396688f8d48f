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

import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import type { TensorMap } from '../src/tensor.ts';
import { activationBackward, activationForward, swigluBackward, swigluForward } from './activations.ts';
import {
  CaseInputs,
  cfgEnum,
  cfgInt,
  gradBuffer,
  gradParams,
  put,
  putGrads,
  readParams,
  type Config,
  type ParamSpec,
  type Params,
} from './common.ts';
import { linearBackward, linearForward } from './linear.ts';

export type DenseActivation = 'swiglu' | 'relu2' | 'relu' | 'gelu';
export const DENSE_ACTIVATIONS: readonly DenseActivation[] = ['swiglu', 'relu2', 'relu', 'gelu'];

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

export function parseDenseFfnConfig(config: Config, where: string): DenseFfnConfig {
  return {
    d: cfgInt(config, 'hidden_size', where),
    F: cfgInt(config, 'intermediate_size', where),
    activation: cfgEnum(config, 'activation', DENSE_ACTIVATIONS, where),
  };
}

/** Parameter names and shapes (the fixture / checkpoint names, relative to the block). */
export function denseFfnParamSpecs(cfg: DenseFfnConfig): ParamSpec[] {
  const { d, F } = cfg;
  const specs: ParamSpec[] = [];
  if (cfg.activation === 'swiglu') specs.push({ name: 'gate_proj.weight', shape: [F, d], init: 'normal' });
  specs.push({ name: 'up_proj.weight', shape: [F, d], init: 'normal' });
  specs.push({ name: 'down_proj.weight', shape: [d, F], init: 'normal' });
  return specs;
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

/**
 * Fixture case `dense-ffn`: in.x (T, d), in.dy (T, d) → out.y, grad.in.x, grad.param.*.
 * Objective L = Σ out.y ⊙ in.dy, so the upstream gradient of y is exactly in.dy.
 */
export function runDenseFfnCase(c: FixtureCase, opts?: RunOptions): TensorMap {
  const inp = new CaseInputs(c);
  const cfg = parseDenseFfnConfig(c.config, inp.where);
  const T = inp.shapeOf('in.x')[0];
  const x = inp.f64('in.x', [T, cfg.d]); // (T, d)
  const specs = denseFfnParamSpecs(cfg);
  const p = readParams(inp, specs);
  const dy = inp.has('in.dy') ? inp.f64('in.dy', [T, cfg.d]) : null; // (T, d)
  inp.assertAllUsed();
  if (!dy && !opts?.forwardOnly)
    throw new Error(`${inp.where}: missing tensor in.dy (expected shape [${T}, ${cfg.d}]) for the backward pass`);

  const out: TensorMap = new Map();
  const w = denseFfnWeights(cfg, p);
  const y = new Float64Array(T * cfg.d); // (T, d)
  const saved = denseFfnForward(y, x, w, cfg, T);
  put(out, 'out.y', [T, cfg.d], y);
  if (opts?.forwardOnly || !dy) return out;

  const dx = gradBuffer(opts, 'grad.in.x', [T, cfg.d]); // (T, d)
  const g = gradParams(opts, specs);
  denseFfnBackward(dx, denseFfnGrads(g), dy, x, w, saved, cfg, T);
  put(out, 'grad.in.x', [T, cfg.d], dx);
  putGrads(out, specs, g);
  return out;
}
