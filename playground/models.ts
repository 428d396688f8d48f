// The models the playground trains: the package's small presets shrunk until a step takes milliseconds in a browser
// tab (2 layers of width 64, sequences of 64 bytes), so that a loss curve appears within seconds.
//
// Sizes: V = 256 byte tokens, d = 64 model width, L = 2 layers, 4 attention heads of 16; Monet: E = 8 experts per
// side (N = 64 composite experts per layer), H = 2 expert heads, m = 8 expert width, top-2 per router; TopK: F = 256
// hidden neurons of which k = 16 stay active per token.

import type { ModelConfig } from '../src/train/presets.ts';

export type PlaygroundModel = 'monet-vd' | 'monet-hd' | 'topk' | 'dense';

const BACKBONE = {
  vocab_size: 256,
  hidden_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  mode: 'train' as const,
};

export function playgroundConfig(kind: PlaygroundModel): ModelConfig {
  switch (kind) {
    case 'monet-vd':
    case 'monet-hd':
      return {
        ...BACKBONE,
        ffn: 'monet',
        moe_experts: 8,
        moe_heads: 2,
        moe_topk: 2,
        moe_dim: 8,
        // one router per layer (groups of 1), so each layer's routing can be looked at on its own
        moe_groups: 1,
        moe_decompose: kind === 'monet-vd' ? 'vertical' : 'horizontal',
        hidden_act: 'relu2',
        aux: { unif: 1e-3, amb: 1e-3 },
        unif_eps: 1e-10,
        bn_eps: 1e-5,
        bn_momentum: 0.1,
      };
    case 'topk':
      // Layer 0 is TopK, layer 1 stays dense (n_last_non_topk = 1, the paper keeps the last layers dense).
      // alpha = 0: pure TopK from the first step (the CLI anneals from dense; a short browser run has no time to).
      return {
        ...BACKBONE,
        ffn: 'topk',
        intermediate_size: 256,
        activation: 'relu',
        k: 16,
        alpha: 0,
        topk_placement: 'ffn',
        n_last_non_topk: 1,
      };
    case 'dense':
      return { ...BACKBONE, ffn: 'dense', intermediate_size: 172, activation: 'swiglu' };
  }
}

/** Training hyper-parameters shared by every playground model (AdamW as the CLI trainer, shorter warm-up). */
export const TRAIN = {
  B: 8,
  S: 64,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1.0,
  warmup: 20,
  seed: 1234,
};
