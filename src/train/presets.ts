// Model configurations: the papers' models by name (for parameter accounting; far too big to train here) and small
// ones that train on this machine, plus the parameter list every configuration implies.
//
// Config keys are those of docs/fixtures.md (Hugging Face / Monet spelling), so a config.json written by a
// run is the `lm` fixture config the backends already read.
//
// Sizes: V vocab, d hidden_size, L layers, nH attention heads, nKV kv heads, hd = d/nH head dim, F intermediate
// size, E = √N experts per side (moe_experts), H expert heads (moe_heads), m expert dim (moe_dim), N experts.

import type { LmConfig } from '../../reference/lm.ts';
import { lmParams, lmState, parseLm } from '../kinds/lm.ts';
import type { ParamSpec, StateSpec } from '../kinds/tensors.ts';

export type { FfnKind } from '../../reference/lm-ffn.ts';
import type { FfnKind } from '../../reference/lm-ffn.ts';

export interface ModelConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  ffn: FfnKind;
  mode: 'train' | 'eval';
  // dense (and the dense layers of peer / topk models)
  intermediate_size?: number;
  activation?: 'swiglu' | 'relu2' | 'relu' | 'gelu';
  // smoe (num_experts, top_k shared with peer)
  num_experts?: number;
  top_k?: number;
  aux?: Record<string, number>;
  // topk
  k?: number;
  alpha?: number;
  topk_placement?: 'ffn' | 'hidden';
  n_last_non_topk?: number;
  // peer
  peer_layers?: number[];
  heads?: number;
  key_dim?: number;
  // monet
  moe_experts?: number;
  moe_heads?: number;
  moe_topk?: number;
  moe_dim?: number;
  moe_groups?: number;
  moe_decompose?: 'vertical' | 'horizontal';
  hidden_act?: 'relu2';
  unif_eps?: number;
  bn_eps?: number;
  bn_momentum?: number;
}

export interface Preset {
  name: string;
  description: string;
  /** Readers must know which numbers come from a paper and which we filled in. */
  source: string;
  config: ModelConfig;
  /** Small enough to train on this machine (2 CPU cores) in minutes. */
  trainable: boolean;
}

const LLAMA_DEFAULTS = {
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  mode: 'train' as const,
};

const MONET_AUX = { unif: 1e-3, amb: 1e-3 }; // λ = 1e-3 for both (docs/spec.md §1.7, Eq. 18)

function monetPaper(
  decompose: 'vertical' | 'horizontal',
  L: number,
  d: number,
  nH: number,
  m: number,
  H: number,
): ModelConfig {
  return {
    ...LLAMA_DEFAULTS,
    vocab_size: 32000,
    hidden_size: d,
    num_hidden_layers: L,
    num_attention_heads: nH,
    num_key_value_heads: nH,
    max_position_embeddings: 2048,
    ffn: 'monet',
    moe_experts: 512,
    moe_heads: H,
    moe_topk: 8,
    moe_dim: m,
    moe_groups: 4,
    moe_decompose: decompose,
    hidden_act: 'relu2',
    aux: { ...MONET_AUX },
    unif_eps: 1e-10,
    bn_eps: 1e-5,
    bn_momentum: 0.1,
  };
}

/** The small backbone every trainable preset shares: bytes in, 4 layers of width 128, sequences of 128. */
function smallBackbone(): Omit<ModelConfig, 'ffn'> {
  return {
    ...LLAMA_DEFAULTS,
    vocab_size: 256,
    hidden_size: 128,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    max_position_embeddings: 128,
  };
}

function smallMonet(decompose: 'vertical' | 'horizontal', E: number, m: number, H: number, topk: number): ModelConfig {
  return {
    ...smallBackbone(),
    ffn: 'monet',
    moe_experts: E,
    moe_heads: H,
    moe_topk: topk,
    moe_dim: m,
    moe_groups: 2,
    moe_decompose: decompose,
    hidden_act: 'relu2',
    aux: { ...MONET_AUX },
    unif_eps: 1e-10,
    bn_eps: 1e-5,
    bn_momentum: 0.1,
  };
}

const PAPER_MONET =
  'Monet paper Table 6 + released VD-1.4B config (docs/spec.md §1.2); moe_topk 8 confirmed for 1.4B only';

export const PRESETS: Preset[] = [
  {
    name: 'monet-vd-850m',
    description: 'Monet-VD 850M (24 × 1536, √N = 512, m = 12, H = 6)',
    source: PAPER_MONET,
    config: monetPaper('vertical', 24, 1536, 12, 12, 6),
    trainable: false,
  },
  {
    name: 'monet-hd-850m',
    description: 'Monet-HD 850M',
    source: PAPER_MONET,
    config: monetPaper('horizontal', 24, 1536, 12, 12, 6),
    trainable: false,
  },
  {
    name: 'monet-vd-1.4b',
    description: 'Monet-VD 1.4B (24 × 2048, √N = 512, m = 16, H = 8)',
    source: PAPER_MONET,
    config: monetPaper('vertical', 24, 2048, 16, 16, 8),
    trainable: false,
  },
  {
    name: 'monet-hd-1.4b',
    description: 'Monet-HD 1.4B',
    source: PAPER_MONET,
    config: monetPaper('horizontal', 24, 2048, 16, 16, 8),
    trainable: false,
  },
  {
    name: 'monet-vd-4.1b',
    description: 'Monet-VD 4.1B (32 × 3072, √N = 512, m = 24, H = 12)',
    source: PAPER_MONET,
    config: monetPaper('vertical', 32, 3072, 24, 24, 12),
    trainable: false,
  },
  {
    name: 'monet-hd-4.1b',
    description: 'Monet-HD 4.1B',
    source: PAPER_MONET,
    config: monetPaper('horizontal', 32, 3072, 24, 24, 12),
    trainable: false,
  },
  {
    name: 'peer-1m-1.4b',
    description:
      'PEER with 1024² experts (H = 8, k = 16) in the middle layer of the 1.4B backbone, GELU MLPs elsewhere',
    source:
      'PEER paper §3.1 (N, H, k, middle-layer placement); key_dim 256, GELU (one activation for the experts and the ' +
      'dense layers, as the lm config has one key) and the 1.4B backbone with F = 4d are our choices, the paper ' +
      'does not state them',
    config: {
      ...LLAMA_DEFAULTS,
      vocab_size: 32000,
      hidden_size: 2048,
      num_hidden_layers: 24,
      num_attention_heads: 16,
      num_key_value_heads: 16,
      max_position_embeddings: 2048,
      ffn: 'peer',
      intermediate_size: 8192,
      activation: 'gelu',
      peer_layers: [12],
      num_experts: 1024 * 1024,
      heads: 8,
      top_k: 16,
      key_dim: 256,
      bn_eps: 1e-5,
      bn_momentum: 0.1,
    },
    trainable: false,
  },
  {
    name: 'topk-lm-2048x24',
    description: 'TopK LM, D = 2048, 24 layers, k = 64, last 2 layers dense',
    source:
      'TopK LM (docs/spec.md §4.4: D, L, k, n_last_non_topk); heads 16, F = 4D, ReLU MLP and vocab 32000 are our ' +
      'choices',
    config: {
      ...LLAMA_DEFAULTS,
      vocab_size: 32000,
      hidden_size: 2048,
      num_hidden_layers: 24,
      num_attention_heads: 16,
      num_key_value_heads: 16,
      max_position_embeddings: 2048,
      ffn: 'topk',
      intermediate_size: 8192,
      activation: 'relu',
      k: 64,
      alpha: 1,
      topk_placement: 'ffn',
      n_last_non_topk: 2,
    },
    trainable: false,
  },
  // ---- trainable here ----
  {
    name: 'monet-vd-small',
    description: 'the default `monet train` model: Monet-VD, 4 × 128, √N = 32 (N = 1024 experts), m = 16, H = 4',
    source: 'ours (small enough for a 2-core CPU in minutes); Monet hyper-parameters otherwise as the paper',
    config: smallMonet('vertical', 32, 16, 4, 4),
    trainable: true,
  },
  {
    name: 'monet-hd-small',
    description: 'Monet-HD with the monet-vd-small sizes',
    source: 'ours',
    config: smallMonet('horizontal', 32, 16, 4, 4),
    trainable: true,
  },
  {
    name: 'monet-vd-512',
    description: "Monet-VD with the paper's √N = 512 (262,144 experts per layer) at d = 128, m = 2, H = 4",
    source: "ours: the paper's expert count at a width that trains on a CPU",
    config: smallMonet('vertical', 512, 2, 4, 8),
    trainable: true,
  },
  {
    name: 'dense-small',
    description: 'SwiGLU Llama, 4 × 128, F = 344 (about the Monet-VD-small FFN size)',
    source: 'ours',
    config: { ...smallBackbone(), ffn: 'dense', intermediate_size: 344, activation: 'swiglu' },
    trainable: true,
  },
  {
    name: 'smoe-small',
    description: 'top-2 SMoE, 8 SwiGLU experts of width 128, 4 × 128',
    source: 'ours; docs/spec.md §3.4 definition, α = 0.01, c_z = 0.001',
    config: {
      ...smallBackbone(),
      ffn: 'smoe',
      intermediate_size: 128,
      num_experts: 8,
      top_k: 2,
      activation: 'swiglu',
      aux: { balance: 0.01, z: 0.001 },
    },
    trainable: true,
  },
  {
    name: 'peer-small',
    description: 'PEER with 64² = 4096 experts (H = 4, k = 8) in layer 2, GELU MLPs (F = 512) elsewhere, 4 × 128',
    source: 'ours; docs/spec.md §2.2 definition',
    config: {
      ...smallBackbone(),
      ffn: 'peer',
      intermediate_size: 512,
      activation: 'gelu',
      peer_layers: [2],
      num_experts: 4096,
      heads: 4,
      top_k: 8,
      key_dim: 32,
      bn_eps: 1e-5,
      bn_momentum: 0.1,
    },
    trainable: true,
  },
  {
    name: 'topk-small',
    description: 'TopK LM, 4 × 128, F = 512 ReLU, k = 32, last 2 layers dense',
    source: 'ours; docs/spec.md §4.3–4.4',
    config: {
      ...smallBackbone(),
      ffn: 'topk',
      intermediate_size: 512,
      activation: 'relu',
      k: 32,
      alpha: 1,
      topk_placement: 'ffn',
      n_last_non_topk: 2,
    },
    trainable: true,
  },
  {
    name: 'tiny',
    description: 'Monet-VD 2 × 16 for tests (√N = 4, m = 4, H = 2)',
    source: 'ours',
    config: {
      ...smallMonet('vertical', 4, 4, 2, 2),
      hidden_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      num_key_value_heads: 2,
      max_position_embeddings: 16,
      moe_groups: 1,
    },
    trainable: true,
  },
];

export function presetNames(): string[] {
  return PRESETS.map((p) => p.name);
}

export function getPreset(name: string): Preset {
  const p = PRESETS.find((q) => q.name === name);
  if (!p) throw new Error(`preset: unknown preset '${name}'; expected one of ${presetNames().join(', ')}`);
  return { ...p, config: structuredClone(p.config) };
}

// ---------------------------------------------------------------------------------------------------------------
// Parameter list: the `lm` kind's declaration (src/kinds/lm.ts) read with this config.

export type { ParamSpec, StateSpec } from '../kinds/tensors.ts';

/** The typed LM config of a model config; a ConfigError names the key, what was expected and found. */
export function lmConfigOf(c: ModelConfig, where = 'model config'): LmConfig {
  return parseLm({ ...c }, where);
}

/** Whether layer i of a topk model uses the TopK activation (the last n_last_non_topk stay dense). */
export function isTopkLayer(c: ModelConfig, i: number): boolean {
  return i < c.num_hidden_layers - (c.n_last_non_topk ?? 2);
}

/** Every parameter of an LM config, in a fixed order (embedding, layers 0..L−1, final norm, head). */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  return [...lmParams(lmConfigOf(c))];
}

/** Non-trained state (BatchNorm running statistics), names as the `lm` fixture's `state.` tensors. */
export function stateSpecs(c: ModelConfig): StateSpec[] {
  return [...lmState(lmConfigOf(c))].map((s) => ({ ...s, name: `state.${s.name}` }));
}

export function countParams(specs: ParamSpec[]): number {
  let n = 0;
  for (const s of specs) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

export interface ParamBreakdown {
  total: number;
  embeddings: number; // embed_tokens + lm_head
  attention: number; // all layers' q/k/v/o
  norms: number;
  ffn: number; // feed-forward / expert parameters, all layers
  routers: number; // Monet routers
}

export function paramBreakdown(c: ModelConfig): ParamBreakdown {
  const b: ParamBreakdown = { total: 0, embeddings: 0, attention: 0, norms: 0, ffn: 0, routers: 0 };
  for (const s of paramSpecs(c)) {
    const n = s.shape.reduce((a, x) => a * x, 1);
    b.total += n;
    if (s.name === 'model.embed_tokens.weight' || s.name === 'lm_head.weight') b.embeddings += n;
    else if (s.name.includes('.self_attn.')) b.attention += n;
    else if (s.name.endsWith('layernorm.weight') || s.name === 'model.norm.weight') b.norms += n;
    else if (s.name.includes('.router.')) b.routers += n;
    else b.ffn += n;
  }
  return b;
}

/**
 * What N = E² experts would cost per layer in the other designs (docs/spec.md §1.6): an SMoE whose N experts each have
 * Monet's expert width m (up and down projection: 2·N·m·d; the N·d gate not counted, as docs/spec.md §1.6 counts
 * it), and PEER with N singleton experts
 * (w_down, w_up: 2·N·d; query and sub-keys not counted). Monet itself: per layer (expert part only).
 */
export function expertScaling(c: ModelConfig): {
  N: number;
  monetPerLayer: number;
  smoePerLayer: number;
  peerPerLayer: number;
} {
  const ffn = lmConfigOf(c).ffn;
  if (ffn.kind !== 'monet') throw new Error(`expertScaling: expected a monet config, found ffn '${c.ffn}'`);
  const { E, m, d } = ffn.monet;
  const N = E * E;
  const monetPerLayer = paramSpecs({ ...c, num_hidden_layers: 1, moe_groups: 1 })
    .filter((s) => s.name.includes('.moe.'))
    .reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  return { N, monetPerLayer, smoePerLayer: 2 * N * m * d, peerPerLayer: 2 * N * d };
}

/** Human form as docs/spec.md's tables write it: 1,465.2M, 17,179.9M, 853.5K. */
export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: a wrong config fails here with the key's name, not deep inside a kernel. The rules are the `lm`
// kind's (src/kinds/lm.ts): the same ones the fixture loader and the backends apply.

export function validateConfig(c: object, where = 'model config'): asserts c is ModelConfig {
  parseLm({ ...c }, where);
}
