// Model configurations: the papers' models by name (for parameter accounting; far too big to train here) and small
// ones that train on this machine, plus the parameter list every configuration implies.
//
// Config keys are those of names.md / FIXTURES.md (Hugging Face / Monet spelling), so a config.json written by a
// run is the `lm` fixture config the backends already read.
//
// Sizes: V vocab, d hidden_size, L layers, nH attention heads, nKV kv heads, hd = d/nH head dim, F intermediate
// size, E = √N experts per side (moe_experts), H expert heads (moe_heads), m expert dim (moe_dim), N experts.

export type FfnKind = 'dense' | 'smoe' | 'peer' | 'monet' | 'topk';

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

const MONET_AUX = { unif: 1e-3, amb: 1e-3 }; // λ = 1e-3 for both (SPEC §1.7, Eq. 18)

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

const PAPER_MONET = 'Monet paper Table 6 + released VD-1.4B config (SPEC §1.2); moe_topk 8 confirmed for 1.4B only';

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
      'PEER paper §3.1 (N, H, k, middle-layer placement); key_dim 256, GELU (one activation for the experts and the dense layers, as the lm config has one key) and the 1.4B backbone with F = 4d are our choices, the paper does not state them',
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
    source: 'TopK LM (SPEC §4.4: D, L, k, n_last_non_topk); heads 16, F = 4D, ReLU MLP and vocab 32000 are our choices',
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
    source: 'ours; SPEC §3.4 definition, α = 0.01, c_z = 0.001',
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
    source: 'ours; SPEC §2.2 definition',
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
    source: 'ours; SPEC §4.3–4.4',
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
// Parameter list

export interface ParamSpec {
  name: string; // checkpoint name, e.g. 'model.layers.0.moe.u1.weight'
  shape: number[];
  /** How it is initialised: normal(0, 0.02) for weights and embeddings, ones for norms, zeros for biases. */
  init: 'normal' | 'ones' | 'zeros';
  /** AdamW weight decay applies (weights and embeddings; never norms and biases, incl. Monet's b/b1/b2). */
  decay: boolean;
}

export interface StateSpec {
  name: string; // 'state.model.layers.0.router.norm1.running_mean'
  shape: number[];
  init: 'ones' | 'zeros';
}

function req(c: ModelConfig, key: keyof ModelConfig): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`config: ffn '${c.ffn}' needs a number for '${key}', found ${JSON.stringify(v)}`);
  return v;
}

function w(name: string, shape: number[]): ParamSpec {
  return { name, shape, init: 'normal', decay: true };
}
function bias(name: string, shape: number[]): ParamSpec {
  return { name, shape, init: 'zeros', decay: false };
}
function norm(name: string, shape: number[]): ParamSpec {
  return { name, shape, init: 'ones', decay: false };
}

function denseFfn(prefix: string, d: number, F: number, act: string): ParamSpec[] {
  const out = act === 'swiglu' ? [w(`${prefix}gate_proj.weight`, [F, d])] : [];
  out.push(w(`${prefix}up_proj.weight`, [F, d]), w(`${prefix}down_proj.weight`, [d, F]));
  return out;
}

/** Whether layer i of a topk model uses the TopK activation (the last n_last_non_topk stay dense). */
export function isTopkLayer(c: ModelConfig, i: number): boolean {
  return i < c.num_hidden_layers - (c.n_last_non_topk ?? 2);
}

/** Every parameter of an LM config, in a fixed order (embedding, layers 0..L−1, final norm, head). */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  validateConfig(c);
  const d = c.hidden_size;
  const V = c.vocab_size;
  const nH = c.num_attention_heads;
  const nKV = c.num_key_value_heads;
  const hd = d / nH;
  const out: ParamSpec[] = [w('model.embed_tokens.weight', [V, d])];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      norm(`${p}input_layernorm.weight`, [d]),
      w(`${p}self_attn.q_proj.weight`, [nH * hd, d]),
      w(`${p}self_attn.k_proj.weight`, [nKV * hd, d]),
      w(`${p}self_attn.v_proj.weight`, [nKV * hd, d]),
      w(`${p}self_attn.o_proj.weight`, [d, nH * hd]),
      norm(`${p}post_attention_layernorm.weight`, [d]),
    );
    switch (c.ffn) {
      case 'dense':
        out.push(...denseFfn(`${p}mlp.`, d, req(c, 'intermediate_size'), c.activation ?? 'swiglu'));
        break;
      case 'topk':
        // Every layer is up/down with ReLU: TopK layers (placement ffn) apply TopK to the hidden units, the last
        // n_last_non_topk layers (and all layers with placement hidden) keep the plain ReLU (our reading, SPEC §4.3).
        out.push(...denseFfn(`${p}mlp.`, d, req(c, 'intermediate_size'), 'relu'));
        break;
      case 'smoe': {
        const E = req(c, 'num_experts');
        const F = req(c, 'intermediate_size');
        out.push(w(`${p}block_sparse_moe.gate.weight`, [E, d]));
        for (let e = 0; e < E; e++) {
          const q = `${p}block_sparse_moe.experts.${e}.`;
          out.push(w(`${q}w1.weight`, [F, d]), w(`${q}w2.weight`, [d, F]));
          if ((c.activation ?? 'swiglu') === 'swiglu') out.push(w(`${q}w3.weight`, [F, d]));
        }
        break;
      }
      case 'peer':
        if ((c.peer_layers ?? []).includes(i)) {
          const N = req(c, 'num_experts');
          const H = req(c, 'heads');
          const dk = req(c, 'key_dim');
          const sq = Math.round(Math.sqrt(N));
          const q = `${p}mlp.`;
          out.push(
            w(`${q}query.weight`, [H * dk, d]),
            bias(`${q}query.bias`, [H * dk]),
            norm(`${q}query_bn.weight`, [H * dk]),
            bias(`${q}query_bn.bias`, [H * dk]),
            w(`${q}sub_keys`, [2, sq, dk / 2]),
            w(`${q}w_down`, [N, d]),
            w(`${q}w_up`, [N, d]),
          );
        } else {
          out.push(...denseFfn(`${p}mlp.`, d, req(c, 'intermediate_size'), c.activation ?? 'swiglu'));
        }
        break;
      case 'monet': {
        const E = req(c, 'moe_experts');
        const H = req(c, 'moe_heads');
        const m = req(c, 'moe_dim');
        const G = req(c, 'moe_groups');
        if (i % G === 0)
          out.push(
            w(`model.layers.${i}.router.w1.weight`, [H * E, d]),
            w(`model.layers.${i}.router.w2.weight`, [H * E, d]),
          );
        const q = `${p}moe.`;
        if (c.moe_decompose === 'horizontal') {
          out.push(
            w(`${q}u.weight`, [E * m, d]),
            bias(`${q}u.bias`, [E * m]),
            w(`${q}v.weight`, [d, E * m]),
            bias(`${q}b`, [E, d]),
          );
        } else {
          const mh = m / 2;
          const dh = d / 2;
          out.push(
            w(`${q}u1.weight`, [E * mh, d]),
            bias(`${q}u1.bias`, [E * mh]),
            w(`${q}u2.weight`, [E * mh, d]),
            bias(`${q}u2.bias`, [E * mh]),
            w(`${q}v11.weight`, [dh, E * mh]),
            w(`${q}v12.weight`, [dh, E * mh]),
            w(`${q}v21.weight`, [dh, E * mh]),
            w(`${q}v22.weight`, [dh, E * mh]),
            bias(`${q}b1`, [E, dh]),
            bias(`${q}b2`, [E, dh]),
          );
        }
        break;
      }
    }
  }
  out.push(norm('model.norm.weight', [d]));
  if (!c.tie_word_embeddings) out.push(w('lm_head.weight', [V, d]));
  return out;
}

/** Non-trained state (BatchNorm running statistics), names as the `lm` fixture's `state.` tensors. */
export function stateSpecs(c: ModelConfig): StateSpec[] {
  const out: StateSpec[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    if (c.ffn === 'monet' && i % req(c, 'moe_groups') === 0) {
      const H = req(c, 'moe_heads');
      for (const n of ['norm1', 'norm2']) {
        out.push({ name: `state.model.layers.${i}.router.${n}.running_mean`, shape: [H], init: 'zeros' });
        out.push({ name: `state.model.layers.${i}.router.${n}.running_var`, shape: [H], init: 'ones' });
      }
    }
    if (c.ffn === 'peer' && (c.peer_layers ?? []).includes(i)) {
      const dq = req(c, 'heads') * req(c, 'key_dim');
      out.push({ name: `state.model.layers.${i}.mlp.query_bn.running_mean`, shape: [dq], init: 'zeros' });
      out.push({ name: `state.model.layers.${i}.mlp.query_bn.running_var`, shape: [dq], init: 'ones' });
    }
  }
  return out;
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
 * What N = E² experts would cost per layer in the other designs (SPEC §1.6): an SMoE whose N experts each have
 * Monet's expert width m (up and down projection: 2·N·m·d; the N·d gate not counted, as in SPEC), and PEER with N singleton experts
 * (w_down, w_up: 2·N·d; query and sub-keys not counted). Monet itself: per layer (expert part only).
 */
export function expertScaling(c: ModelConfig): {
  N: number;
  monetPerLayer: number;
  smoePerLayer: number;
  peerPerLayer: number;
} {
  if (c.ffn !== 'monet') throw new Error(`expertScaling: expected a monet config, found ffn '${c.ffn}'`);
  const E = req(c, 'moe_experts');
  const m = req(c, 'moe_dim');
  const d = c.hidden_size;
  const N = E * E;
  const monetPerLayer = paramSpecs({ ...c, num_hidden_layers: 1, moe_groups: 1 })
    .filter((s) => s.name.includes('.moe.'))
    .reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  return { N, monetPerLayer, smoePerLayer: 2 * N * m * d, peerPerLayer: 2 * N * d };
}

/** Human form as SPEC's tables write it: 1,465.2M, 17,179.9M, 853.5K. */
export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: a wrong config fails here with the key's name, not deep inside a kernel.

function posInt(c: ModelConfig, key: keyof ModelConfig): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new Error(`config: '${key}' must be a positive integer, found ${JSON.stringify(v)}`);
  return v;
}

export function validateConfig(c: ModelConfig): void {
  const d = posInt(c, 'hidden_size');
  posInt(c, 'vocab_size');
  const L = posInt(c, 'num_hidden_layers');
  const nH = posInt(c, 'num_attention_heads');
  const nKV = posInt(c, 'num_key_value_heads');
  posInt(c, 'max_position_embeddings');
  if (d % nH !== 0) throw new Error(`config: hidden_size ${d} must be divisible by num_attention_heads ${nH}`);
  if (nH % nKV !== 0)
    throw new Error(`config: num_attention_heads ${nH} must be divisible by num_key_value_heads ${nKV}`);
  if ((d / nH) % 2 !== 0)
    throw new Error(`config: the head dim hidden_size/num_attention_heads = ${d / nH} must be even for RoPE`);
  const kinds: FfnKind[] = ['dense', 'smoe', 'peer', 'monet', 'topk'];
  if (!kinds.includes(c.ffn))
    throw new Error(`config: 'ffn' must be one of ${kinds.join(', ')}, found ${JSON.stringify(c.ffn)}`);
  // Keys every kind shares, checked here so that a hand-edited config.json fails naming the key rather than later
  // inside a backend (docs/robustness.md).
  for (const key of ['rms_norm_eps', 'rope_theta', 'bn_eps', 'unif_eps'] as const) {
    const v = c[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw new Error(`config: '${key}' must be a positive number, found ${JSON.stringify(v)}`);
  }
  if (c.tie_word_embeddings !== undefined && typeof c.tie_word_embeddings !== 'boolean')
    throw new Error(
      `config: 'tie_word_embeddings' must be true or false, found ${JSON.stringify(c.tie_word_embeddings)}`,
    );
  if (c.mode !== undefined && c.mode !== 'train' && c.mode !== 'eval')
    throw new Error(`config: 'mode' must be 'train' or 'eval', found ${JSON.stringify(c.mode)}`);
  const acts = c.ffn === 'peer' ? ['relu', 'gelu'] : c.ffn === 'topk' ? ['relu'] : ['swiglu', 'relu2', 'relu', 'gelu'];
  if (c.activation !== undefined && c.ffn !== 'monet' && !acts.includes(c.activation)) {
    throw new Error(
      `config: 'activation' for ffn '${c.ffn}' must be one of ${acts.join(', ')}, found ${JSON.stringify(c.activation)}`,
    );
  }
  const auxNames = c.ffn === 'smoe' ? ['balance', 'z'] : c.ffn === 'monet' ? ['unif', 'amb'] : [];
  if (c.aux !== undefined) {
    if (typeof c.aux !== 'object' || c.aux === null || Array.isArray(c.aux))
      throw new Error(`config: 'aux' must be an object {${auxNames.join(', ')}}, found ${JSON.stringify(c.aux)}`);
    for (const [k, v] of Object.entries(c.aux)) {
      if (!auxNames.includes(k))
        throw new Error(
          `config: 'aux.${k}' is not an aux loss of ffn '${c.ffn}'; expected ${auxNames.length ? auxNames.join(', ') : 'no aux key'}`,
        );
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
        throw new Error(`config: 'aux.${k}' must be a non-negative number, found ${JSON.stringify(v)}`);
    }
  }
  for (const k of auxNames) {
    if (typeof c.aux?.[k] !== 'number')
      throw new Error(
        `config: ffn '${c.ffn}' needs 'aux.${k}' (its loss coefficient; 0 turns it off), found ${JSON.stringify(c.aux?.[k])}`,
      );
  }
  // Size guards: paramSpecs lists layers and SMoE experts one by one, so a hostile config.json asking for a billion
  // of them would make loading hang before any file size is compared. Real models are far below these bounds.
  if (L > 4096) throw new Error(`config: num_hidden_layers ${L} exceeds the supported 4096`);
  switch (c.ffn) {
    case 'dense':
      posInt(c, 'intermediate_size');
      break;
    case 'topk': {
      const F = posInt(c, 'intermediate_size');
      const k = posInt(c, 'k');
      const place = c.topk_placement ?? 'ffn';
      if (place !== 'ffn' && place !== 'hidden')
        throw new Error(`config: 'topk_placement' must be 'ffn' or 'hidden', found ${JSON.stringify(place)}`);
      const width = place === 'ffn' ? F : d;
      if (k > width)
        throw new Error(
          `config: topk k = ${k} exceeds the ${place === 'ffn' ? 'intermediate_size' : 'hidden_size'} ${width} it selects from`,
        );
      break;
    }
    case 'smoe': {
      posInt(c, 'intermediate_size');
      const E = posInt(c, 'num_experts');
      const k = posInt(c, 'top_k');
      if (k > E) throw new Error(`config: smoe top_k ${k} exceeds num_experts ${E}`);
      if (E > 65536)
        throw new Error(
          `config: smoe num_experts ${E} exceeds the supported 65536 (each expert is its own set of tensors)`,
        );
      break;
    }
    case 'peer': {
      const N = posInt(c, 'num_experts');
      const sq = Math.round(Math.sqrt(N));
      if (sq * sq !== N) throw new Error(`config: peer num_experts must be a perfect square, found ${N}`);
      posInt(c, 'heads');
      const dk = posInt(c, 'key_dim');
      if (dk % 2 !== 0) throw new Error(`config: peer key_dim must be even (two halves for product keys), found ${dk}`);
      const k = posInt(c, 'top_k');
      if (k > sq) throw new Error(`config: peer top_k ${k} exceeds √num_experts = ${sq}`);
      if (c.activation !== 'relu' && c.activation !== 'gelu') {
        throw new Error(
          `config: peer 'activation' (the experts' σ and the dense layers' MLP) must be 'relu' or 'gelu', found ${JSON.stringify(c.activation)}`,
        );
      }
      const layers = c.peer_layers;
      if (
        !Array.isArray(layers) ||
        layers.length === 0 ||
        layers.some((i) => !Number.isInteger(i) || i < 0 || i >= L)
      ) {
        throw new Error(
          `config: peer_layers must be a non-empty list of layer indices in [0, ${L}), found ${JSON.stringify(layers)}`,
        );
      }
      posInt(c, 'intermediate_size');
      break;
    }
    case 'monet': {
      const E = posInt(c, 'moe_experts');
      posInt(c, 'moe_heads');
      const k = posInt(c, 'moe_topk');
      if (k >= E)
        throw new Error(`config: moe_topk ${k} must be below moe_experts ${E} (the BN threshold is Φ⁻¹(1 − topk/E))`);
      const m = posInt(c, 'moe_dim');
      posInt(c, 'moe_groups');
      const dec = c.moe_decompose ?? 'vertical';
      if (dec !== 'vertical' && dec !== 'horizontal')
        throw new Error(`config: 'moe_decompose' must be 'vertical' or 'horizontal', found ${JSON.stringify(dec)}`);
      if (dec === 'vertical' && (m % 2 !== 0 || d % 2 !== 0))
        throw new Error(`config: vertical decomposition needs even moe_dim and hidden_size, found m = ${m}, d = ${d}`);
      break;
    }
  }
}
