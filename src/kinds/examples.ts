// Tiny LM configurations of every feed-forward kind, for the demo (`monet demo`) and the reference LM's tests: the
// model-wide keys of a tiny LM, and per ffn kind its own keys with a label. A kind added to the lm declaration
// without an example is a compile error (the record is keyed by every kind).

import type { FfnKind } from '../../reference/lm-ffn.ts';

/** The model-wide keys of a tiny LM; an example's keys are merged over these. */
export const TINY_LM_BASE: Readonly<Record<string, unknown>> = {
  vocab_size: 11,
  hidden_size: 8,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 16,
  tie_word_embeddings: false,
  mode: 'train',
};

export interface LmExample {
  label: string;
  /** The feed-forward's own keys (config.ffn is the record's key). */
  config: Record<string, unknown>;
}

const MONET = {
  moe_experts: 4,
  moe_heads: 2,
  moe_topk: 1,
  moe_dim: 4,
  moe_groups: 2,
  hidden_act: 'relu2',
  aux: { unif: 1e-3, amb: 1e-3 },
  unif_eps: 1e-10,
  bn_eps: 1e-5,
  bn_momentum: 0.1,
};

export const LM_EXAMPLES: Record<FfnKind, LmExample[]> = {
  dense: [
    { label: 'dense swiglu', config: { intermediate_size: 12, activation: 'swiglu' } },
    { label: 'dense relu2', config: { intermediate_size: 12, activation: 'relu2' } },
  ],
  smoe: [
    {
      label: 'smoe swiglu E=4 k=2',
      config: {
        intermediate_size: 6,
        num_experts: 4,
        top_k: 2,
        activation: 'swiglu',
        aux: { balance: 0.01, z: 0.001 },
      },
    },
  ],
  topk: [
    {
      label: 'topk ffn α=0.4',
      config: { intermediate_size: 12, k: 4, alpha: 0.4, topk_placement: 'ffn', n_last_non_topk: 1 },
    },
    {
      label: 'topk hidden α=0.4',
      config: { intermediate_size: 12, k: 4, alpha: 0.4, topk_placement: 'hidden', n_last_non_topk: 1 },
    },
  ],
  monet: [
    { label: 'monet vertical, groups of 2', config: { ...MONET, moe_decompose: 'vertical' } },
    { label: 'monet horizontal, groups of 2', config: { ...MONET, moe_decompose: 'horizontal' } },
  ],
  peer: [
    {
      label: 'peer on layer 1 (gelu)',
      config: {
        peer_layers: [1],
        num_experts: 16,
        heads: 2,
        top_k: 2,
        key_dim: 4,
        activation: 'gelu',
        bn_eps: 1e-5,
        bn_momentum: 0.1,
        intermediate_size: 12,
      },
    },
  ],
};

/** Every example as a full lm config, in the order the demo prints them. */
export function lmExampleConfigs(): Array<{ ffn: FfnKind; label: string; config: Record<string, unknown> }> {
  const order: FfnKind[] = ['dense', 'smoe', 'topk', 'monet', 'peer'];
  return order.flatMap((ffn) =>
    LM_EXAMPLES[ffn].map((ex) => ({ ffn, label: ex.label, config: { ...TINY_LM_BASE, ffn, ...ex.config } })),
  );
}
