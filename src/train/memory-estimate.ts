// How much memory a model needs to train, evaluate or sample, computed from its config in closed form — before
// anything is allocated — so that `--layers 4096 --num-experts 65536` or a hand-edited config.json is a sentence
// naming the sizes rather than a V8 "heap out of memory" abort after a minute.
//
// Counted (bytes; f = 8 for the float64 reference engine, 4 for the float32 device engines):
//   parameters   N values: the float64 host copy the model is created or loaded in (8·N), the engine's copy (f·N)
//   optimizer    training only: gradients and two AdamW moments (3·f·N)
//   activations  what a forward keeps for its backward, per layer and token, times two for the backward's own
//                buffers (training), or one forward (eval: B × S tokens; sample: one sequence of max_position
//                tokens), plus the logits, their softmax and gradient (3·V per token)
//   bookkeeping  one JS object per parameter tensor (its spec, map entries, device buffer handles): an SMoE with
//                65,536 experts in 4,096 layers lists 805 million tensors, which no JS heap holds
// and compared (memory.ts, in Node) with: the machine's memory (or the container's limit) for the values, the JS
// heap for the bookkeeping, and wasm32's 4 GiB for what a WASM engine keeps in its memory.
//
// The activation figure is an estimate: per layer and token it sums the buffers the layers save (src/layers/,
// reference/), rounded up; docs/robustness.md compares it with what runs measure.

import type { LmConfig } from '../../reference/lm.ts';
import { modelSize } from './model-size.ts';
import { lmConfigOf, type ModelConfig } from './presets.ts';

/** What the model is used for, and how many tokens one forward holds. */
export interface MemoryUse {
  purpose: 'train' | 'eval' | 'sample';
  /** reference = float64; wasm / webgpu / js / auto = float32 */
  backend: string;
  batch: number; // sequences per forward (per micro-batch)
  seq: number; // tokens per sequence
}

export interface MemoryEstimate {
  params: number; // parameter values
  tensors: number; // parameter tensors
  bytes: { parameters: number; optimizer: number; activations: number; bookkeeping: number };
  /** parameters + optimizer + activations */
  valueBytes: number;
  /** what the WASM engine keeps in its wasm32 memory (engine copy, optimizer, activations) */
  wasmBytes: number;
}

/** A JS object per tensor: its ParamSpec (name string, shape array), map entries, an engine handle. */
const BYTES_PER_TENSOR = 400;
export const WASM32_BYTES = 4 * 2 ** 30;

/** Floats one token keeps per layer in a forward (saved for backward), for the attention block. */
function attentionFloats(c: LmConfig, S: number): number {
  const { d, nH, nKV, hd } = c;
  // norm in/out, q, k, v (before and after RoPE), scores and probabilities over S keys, context, output, residuals
  return 8 * d + 2 * nH * hd + 4 * nKV * hd + 2 * nH * S;
}

/** Floats one token keeps per layer in a forward, for layer i's feed-forward. */
function ffnFloats(c: LmConfig, i: number): number {
  const f = c.ffn;
  switch (f.kind) {
    case 'dense':
      return 4 * f.mlp.F + 2 * c.d;
    case 'topk':
      return 5 * f.topk.F + 2 * c.d; // up, TopK input/output, mask, down input
    case 'smoe': {
      const { E, k, F } = f.smoe;
      return 4 * E + k * (4 * F + 2 * c.d) + 2 * c.d; // router logits/probs/grads, each chosen expert's MLP
    }
    case 'peer': {
      if (!f.layers.includes(i)) return 4 * (f.dense?.F ?? 0) + 2 * c.d;
      const { H, k, dk, N } = f.peer;
      const side = Math.ceil(Math.sqrt(N));
      // query (and its BN), scores over both sub-key sets, k² candidates, the k experts' activations
      return H * (3 * dk + 4 * side + 2 * k * k + 4 * k) + 2 * c.d;
    }
    case 'monet': {
      const { E, H, m } = f.monet;
      // two routers: logits, BN, gates, masks (H × E each); the experts' per-head mixtures of width m
      return 2 * 6 * H * E + 4 * H * E * m + 4 * c.d;
    }
  }
}

/**
 * The memory `use` of `config` needs, in closed form. SMoE experts are listed for one layer only (at most 65,536
 * tensors), so this costs milliseconds for any config the validator accepts.
 */
export function estimateMemory(config: ModelConfig, use: MemoryUse): MemoryEstimate {
  const c = lmConfigOf(config);
  const { params, tensors } = modelSize(c);
  const f = use.backend === 'reference' ? 8 : 4;
  const tokens = use.batch * use.seq;
  let perToken = 3 * c.V;
  for (let i = 0; i < c.L; i++) perToken += attentionFloats(c, use.seq) + ffnFloats(c, i);
  const activations = tokens * perToken * f * (use.purpose === 'train' ? 2 : 1);
  const optimizer = use.purpose === 'train' ? 3 * f * params : 0;
  const parameters = 8 * params + f * params;
  const bookkeeping = tensors * BYTES_PER_TENSOR;
  return {
    params,
    tensors,
    bytes: { parameters, optimizer, activations, bookkeeping },
    valueBytes: parameters + optimizer + activations,
    wasmBytes: f * params + optimizer + activations,
  };
}
