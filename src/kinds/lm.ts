// Kind `lm`: the Llama-style decoder LM with a feed-forward kind per config.ffn (reference/lm.ts,
// src/layers/lm.ts). The same declaration reads fixture configs, a run's config.json and the trainer's presets.
//
// Legend: V vocab_size, d hidden_size, L num_hidden_layers, nH num_attention_heads, nKV num_key_value_heads,
// hd = d/nH head dim, F intermediate_size, B × S token batch; the feed-forward kinds' own legends in their files.
//
// Parameter names (Hugging Face Llama / Mixtral / Monet): model.embed_tokens.weight (V, d); per layer i
// model.layers.<i>.input_layernorm.weight, self_attn.{q,k,v,o}_proj.weight, post_attention_layernorm.weight and
// the feed-forward's (mlp.*, block_sparse_moe.*, moe.* and router.* on the first layer of each Monet group);
// model.norm.weight; lm_head.weight unless tied.

import type { DenseFfnConfig } from '../../reference/dense-ffn.ts';
import type { FfnConfig, FfnKind, TopkLmConfig } from '../../reference/lm-ffn.ts';
import type { LmConfig } from '../../reference/lm.ts';
import type { MonetDecompose } from '../../reference/monet-layer.ts';
import type { Rng } from '../../reference/rng.ts';
import { ConfigError, ConfigReader, type KeyTable } from './config.ts';
import { DENSE_FFN_KEYS, DENSE_FFN_PARAMS, denseFfnParams, HIDDEN_SIZE, readDenseFfn } from './dense-ffn.ts';
import type { KindDecl, Tokens } from './kind.ts';
import {
  input,
  type KindTable,
  nested,
  optionalOutput,
  output,
  param,
  type RuleDecl,
  rulesWhen,
  type TensorDecl,
} from './layout-table.ts';
import {
  MONET_EXPERT_KEYS,
  MONET_HD_PARAMS,
  MONET_ROUTER_OWN_KEYS,
  MONET_ROUTER_PARAMS,
  MONET_ROUTER_RULE,
  MONET_ROUTER_STATE,
  MONET_VD_PARAMS,
  MONET_VD_RULES,
  monetExpertParams,
  monetRouterParams,
  monetRouterState,
  readMonetLayer,
} from './monet.ts';
import { PEER_EXPERT_KEYS, PEER_PARAMS, PEER_RULES, PEER_STATE, peerParams, peerState, readPeer } from './peer.ts';
import { readSmoe, SMOE_KEYS, SMOE_PARAMS, SMOE_RULES, smoeParams } from './smoe.ts';
import {
  numel,
  prefixed,
  scale,
  shapes,
  weight,
  maxDim,
  type KindLayout,
  type ParamSpec,
  type StateSpec,
} from './tensors.ts';
import { readTopkFfn, TOPK_FFN_KEYS, TOPK_FFN_PARAMS, TOPK_FFN_RULE, topkFfnParams } from './topk.ts';

export const FFN_KINDS: readonly FfnKind[] = ['dense', 'smoe', 'peer', 'monet', 'topk'];

/** The keys every LM has, whatever its feed-forward. */
export const LM_BACKBONE_KEYS = {
  vocab_size: { type: 'int', min: 1, doc: 'V, the vocabulary' },
  hidden_size: HIDDEN_SIZE,
  // Parameters are listed layer by layer: the bound keeps a hostile config from asking for millions of them.
  num_hidden_layers: { type: 'int', min: 1, max: 4096, doc: 'L, the decoder layers' },
  num_attention_heads: { type: 'int', min: 1, doc: 'nH, query heads (hidden_size is a multiple)' },
  num_key_value_heads: { type: 'int', min: 1, doc: 'nKV, key/value heads (num_attention_heads is a multiple)' },
  rms_norm_eps: { type: 'number', above: 0, default: 1e-6, doc: 'RMSNorm ε' },
  rope_theta: { type: 'number', above: 0, default: 10000, doc: 'RoPE base' },
  max_position_embeddings: { type: 'int', min: 1, doc: 'the longest sequence' },
  tie_word_embeddings: { type: 'bool', default: false, doc: 'logits use model.embed_tokens.weight (no lm_head)' },
  mode: { type: 'enum', values: ['train', 'eval'], default: 'train', doc: 'BatchNorms: batch or running statistics' },
  ffn: { type: 'enum', values: FFN_KINDS, doc: 'the feed-forward kind of every layer' },
} as const satisfies KeyTable;

/** Each feed-forward kind's own keys (besides the backbone's). */
export const LM_FFN_KEYS: Record<FfnKind, KeyTable> = {
  dense: { intermediate_size: DENSE_FFN_KEYS.intermediate_size, activation: DENSE_FFN_KEYS.activation },
  smoe: {
    intermediate_size: SMOE_KEYS.intermediate_size,
    activation: SMOE_KEYS.activation,
    num_experts: SMOE_KEYS.num_experts,
    top_k: SMOE_KEYS.top_k,
    aux: SMOE_KEYS.aux,
  },
  topk: {
    intermediate_size: TOPK_FFN_KEYS.intermediate_size,
    k: TOPK_FFN_KEYS.k,
    alpha: TOPK_FFN_KEYS.alpha,
    activation: TOPK_FFN_KEYS.activation,
    topk_placement: {
      type: 'enum',
      values: ['ffn', 'hidden'],
      default: 'ffn',
      doc: "ffn: TopK on the MLP's hidden units; hidden: on the block's output hidden state",
    },
    n_last_non_topk: { type: 'int', min: 0, default: 2, doc: 'the last layers without TopK (at most L)' },
  },
  peer: {
    peer_layers: { type: 'layers', doc: 'the layers whose MLP is PEER (the others are dense)' },
    ...PEER_EXPERT_KEYS,
    intermediate_size: {
      type: 'int',
      min: 1,
      requiredIf: 'some layer is not in peer_layers (a dense layer)',
      doc: 'F of the dense layers',
    },
  },
  monet: {
    ...MONET_ROUTER_OWN_KEYS,
    ...MONET_EXPERT_KEYS,
    moe_groups: { type: 'int', min: 1, doc: 'G: a router on every G-th layer, reused by the next G − 1' },
    moe_decompose: { type: 'enum', values: ['vertical', 'horizontal'], doc: 'MoVDE or MoHDE experts' },
  },
};

/** The backbone's rules: attention heads divide the width, and RoPE rotates pairs. */
export const LM_RULES = {
  heads: {
    name: 'hidden_size_multiple_of_heads',
    key: 'hidden_size',
    check: 'hidden_size % num_attention_heads == 0',
    expected: 'a multiple of num_attention_heads = {num_attention_heads}',
  },
  kvHeads: {
    name: 'heads_multiple_of_kv_heads',
    key: 'num_attention_heads',
    check: 'num_attention_heads % num_key_value_heads == 0',
    expected: 'a multiple of num_key_value_heads = {num_key_value_heads}',
  },
  headDim: {
    name: 'head_dim_even',
    key: 'hidden_size',
    check: '(hidden_size // num_attention_heads) % 2 == 0',
    expected:
      'an even head dim hidden_size / num_attention_heads (RoPE rotates pairs); ' +
      '{hidden_size} / {num_attention_heads} = {hidden_size // num_attention_heads}',
  },
} as const satisfies Record<string, RuleDecl>;

/** The TopK LM's rules (k's bound depends on where TopK applies). */
export const LM_TOPK_RULES = {
  nLast: {
    name: 'n_last_non_topk_at_most_layers',
    key: 'n_last_non_topk',
    check: 'n_last_non_topk <= num_hidden_layers',
    expected: 'at most num_hidden_layers = {num_hidden_layers}',
  },
  hidden: {
    name: 'k_at_most_hidden_size',
    key: 'k',
    when: "topk_placement == 'hidden'",
    check: 'k <= hidden_size',
    expected: "at most hidden_size = {hidden_size} (topk_placement 'hidden')",
  },
} as const satisfies Record<string, RuleDecl>;

/** The feed-forward part of the config, typed (the backbone's d, L and mode are given). */
function readFfn(r: ConfigReader, kind: FfnKind, d: number, L: number, mode: 'train' | 'eval'): FfnConfig {
  switch (kind) {
    case 'dense':
      return { kind, mlp: readDenseFfn(r) };
    case 'smoe':
      return { kind, smoe: readSmoe(r), aux: r.coefs<'balance' | 'z'>('aux') };
    case 'topk': {
      const placement = r.oneOf<'ffn' | 'hidden'>('topk_placement');
      const nLast = r.int('n_last_non_topk');
      r.check(LM_TOPK_RULES.nLast);
      let ffn: TopkLmConfig;
      if (placement === 'ffn') ffn = { ...readTopkFfn(r), placement, nLast };
      else {
        // k selects from the hidden state (d wide); the MLP is plain ReLU
        const F = r.int('intermediate_size');
        r.oneOf('activation');
        const k = r.int('k');
        r.check(LM_TOPK_RULES.hidden);
        ffn = { d, F, k, alpha: r.num('alpha'), placement, nLast };
      }
      return { kind, topk: ffn };
    }
    case 'peer': {
      const layers = r.layers('peer_layers', L);
      const peer = readPeer(r, d, mode); // PEER's BatchNorm follows the model's mode
      let dense: DenseFfnConfig | null = null;
      if (layers.length < L) dense = { d, F: r.int('intermediate_size'), activation: peer.activation };
      else if (r.has('intermediate_size')) r.int('intermediate_size'); // accepted, unused: every layer is PEER
      return { kind, peer, layers, dense };
    }
    case 'monet': {
      const decompose = r.oneOf<MonetDecompose>('moe_decompose');
      const monet = readMonetLayer(r, d, mode, decompose);
      return { kind, monet, groups: r.int('moe_groups'), decompose };
    }
  }
}

/** The keys of an LM with this ffn (the backbone's and the feed-forward's). */
function keysOf(ffn: FfnKind): KeyTable {
  return { ...LM_BACKBONE_KEYS, ...LM_FFN_KEYS[ffn] };
}

/** Parse an LM config. With `tokens` = [B, S] (a fixture case), S is also checked against the config. */
export function parseLm(raw: Readonly<Record<string, unknown>>, where: string, tokens?: Tokens): LmConfig {
  // `ffn` first: it says which keys the rest of the config may have.
  const ffn = new ConfigReader(raw, LM_BACKBONE_KEYS, where, "kind 'lm'").oneOf<FfnKind>('ffn');
  const belongsTo = (key: string) => {
    const kinds = FFN_KINDS.filter((k) => Object.hasOwn(LM_FFN_KEYS[k], key));
    return kinds.length ? `ffn ${kinds.map((k) => `'${k}'`).join(', ')}` : undefined;
  };
  const r = new ConfigReader(raw, keysOf(ffn), where, `kind 'lm' with ffn '${ffn}'`, belongsTo);
  r.oneOf('ffn');
  const V = r.int('vocab_size');
  const d = r.int('hidden_size');
  const L = r.int('num_hidden_layers');
  const nH = r.int('num_attention_heads');
  const nKV = r.int('num_key_value_heads');
  r.check(LM_RULES.heads);
  r.check(LM_RULES.kvHeads);
  r.check(LM_RULES.headDim);
  const hd = d / nH;
  const maxPos = r.int('max_position_embeddings');
  const mode = r.oneOf<'train' | 'eval'>('mode');
  const cfg: LmConfig = {
    V,
    d,
    L,
    nH,
    nKV,
    hd,
    eps: r.num('rms_norm_eps'),
    theta: r.num('rope_theta'),
    maxPos,
    tied: r.bool('tie_word_embeddings'),
    mode,
    ffn: readFfn(r, ffn, d, L, mode),
  };
  r.finish();
  if (Array.isArray(tokens)) {
    const S = tokens[1];
    if (S > maxPos)
      throw new ConfigError(
        `in.tokens has sequence length ${S}: expected at most config.max_position_embeddings = ${maxPos}`,
        where,
      );
    if (S < 2)
      throw new ConfigError(
        `in.tokens has sequence length ${S}: expected at least 2 (the loss predicts token s+1 from 0..s)`,
        where,
      );
  }
  return cfg;
}

const layerPrefix = (i: number) => `model.layers.${i}.`;

/** The feed-forward parameters of layer i, named relative to `model.layers.<i>.`. */
export function ffnParams(cfg: LmConfig, i: number): ParamSpec[] {
  const f = cfg.ffn;
  switch (f.kind) {
    case 'dense':
      return prefixed('mlp.', denseFfnParams(f.mlp));
    case 'topk':
      return prefixed('mlp.', topkFfnParams(f.topk)); // ReLU MLP in every layer, TopK or not
    case 'smoe':
      return prefixed('block_sparse_moe.', smoeParams(f.smoe));
    case 'peer':
      return prefixed('mlp.', f.layers.includes(i) ? peerParams(f.peer) : denseFfnParams(f.dense!));
    case 'monet': {
      const router = i % f.groups === 0 ? prefixed('router.', monetRouterParams(f.monet)) : [];
      return [...router, ...prefixed('moe.', monetExpertParams(f.monet, f.decompose))];
    }
  }
}

/** The feed-forward state of layer i (BatchNorm running statistics), relative to `model.layers.<i>.`. */
export function ffnState(cfg: LmConfig, i: number): StateSpec[] {
  const f = cfg.ffn;
  if (f.kind === 'peer' && f.layers.includes(i)) return prefixed('mlp.', peerState(f.peer));
  if (f.kind === 'monet' && i % f.groups === 0) return prefixed('router.', monetRouterState(f.monet));
  return [];
}

/** Every parameter under its checkpoint name, in checkpoint order (embedding, layers 0..L−1, final norm, head). */
export function* lmParams(cfg: LmConfig): Iterable<ParamSpec> {
  const { V, d, L, nH, nKV, hd } = cfg;
  yield weight('model.embed_tokens.weight', [V, d]);
  for (let i = 0; i < L; i++) {
    const p = layerPrefix(i);
    yield scale(`${p}input_layernorm.weight`, [d]);
    yield weight(`${p}self_attn.q_proj.weight`, [nH * hd, d]);
    yield weight(`${p}self_attn.k_proj.weight`, [nKV * hd, d]);
    yield weight(`${p}self_attn.v_proj.weight`, [nKV * hd, d]);
    yield weight(`${p}self_attn.o_proj.weight`, [d, nH * hd]);
    yield scale(`${p}post_attention_layernorm.weight`, [d]);
    yield* prefixed(p, ffnParams(cfg, i));
  }
  yield scale('model.norm.weight', [d]);
  if (!cfg.tied) yield weight('lm_head.weight', [V, d]);
}

/** Every state tensor (names without `state.`): `model.layers.<i>.…running_{mean,var}`. */
export function* lmState(cfg: LmConfig): Iterable<StateSpec> {
  for (let i = 0; i < cfg.L; i++) yield* prefixed(layerPrefix(i), ffnState(cfg, i));
}

/** The aux losses an LM reports (out.loss_<name>), by feed-forward kind. */
export function lmAuxNames(cfg: LmConfig): string[] {
  return LM_AUX[cfg.ffn.kind];
}

// ---------------------------------------------------------------------------------------------------------------
// the layout as data (the JSON schema's `lm.<ffn>` tables): the same names and shapes as lmParams, lmState and
// layout() below

const LAYERS: [string, string][] = [['i', 'num_hidden_layers']];
const HD = '(hidden_size // num_attention_heads)';

/** Layer i's feed-forward tensors (parameters and state), relative to `model.layers.{i}.`. */
const LM_FFN_TENSORS: Record<FfnKind, TensorDecl[]> = {
  dense: nested('mlp.', DENSE_FFN_PARAMS),
  topk: nested('mlp.', TOPK_FFN_PARAMS),
  smoe: nested('block_sparse_moe.', SMOE_PARAMS),
  peer: [
    ...nested('mlp.', [...PEER_PARAMS, ...PEER_STATE], { when: 'i in peer_layers' }),
    ...nested('mlp.', DENSE_FFN_PARAMS, { when: 'i not in peer_layers' }),
  ],
  monet: [
    ...nested('router.', [...MONET_ROUTER_PARAMS, ...MONET_ROUTER_STATE], { when: 'i % moe_groups == 0' }),
    ...nested('moe.', MONET_HD_PARAMS, { when: "moe_decompose == 'horizontal'" }),
    ...nested('moe.', MONET_VD_PARAMS, { when: "moe_decompose == 'vertical'" }),
  ],
};

const LM_FFN_RULES: Record<FfnKind, RuleDecl[]> = {
  dense: [],
  topk: [LM_TOPK_RULES.nLast, ...rulesWhen("topk_placement == 'ffn'", [TOPK_FFN_RULE]), LM_TOPK_RULES.hidden],
  smoe: SMOE_RULES,
  peer: Object.values(PEER_RULES),
  monet: [MONET_ROUTER_RULE, ...rulesWhen("moe_decompose == 'vertical'", MONET_VD_RULES)],
};

const LM_AUX: Record<FfnKind, string[]> = {
  dense: [],
  topk: [],
  peer: [],
  smoe: ['balance', 'z'],
  monet: ['unif', 'amb'],
};

/** The table of an LM with feed-forward `ffn`. */
function lmTable(ffn: FfnKind): KindTable {
  const layer = [
    param('input_layernorm.weight', ['hidden_size']),
    param('self_attn.q_proj.weight', [`num_attention_heads * ${HD}`, 'hidden_size']),
    param('self_attn.k_proj.weight', [`num_key_value_heads * ${HD}`, 'hidden_size']),
    param('self_attn.v_proj.weight', [`num_key_value_heads * ${HD}`, 'hidden_size']),
    param('self_attn.o_proj.weight', ['hidden_size', `num_attention_heads * ${HD}`]),
    param('post_attention_layernorm.weight', ['hidden_size']),
    ...LM_FFN_TENSORS[ffn],
  ];
  return {
    layout: {
      sizes: { B: 'sequences: the first axis of in.tokens', S: 'sequence length: the last axis of in.tokens' },
      tensors: [
        { ...input('tokens', ['B', 'S']), dtype: 'int' }, // token ids: no gradient
        param('model.embed_tokens.weight', ['vocab_size', 'hidden_size']),
        ...nested('model.layers.{i}.', layer, { for: LAYERS }),
        param('model.norm.weight', ['hidden_size']),
        param('lm_head.weight', ['vocab_size', 'hidden_size'], { when: 'not tie_word_embeddings' }),
        output('loss', []),
        optionalOutput('logits', ['B', 'S', 'vocab_size']),
        ...LM_AUX[ffn].map((n) => optionalOutput(`loss_${n}`, [])),
      ],
      next: "mode == 'train'",
    },
    rules: [...Object.values(LM_RULES), ...LM_FFN_RULES[ffn]],
  };
}

export const lmKind: KindDecl<LmConfig> = {
  name: 'lm',
  keys: { ...LM_BACKBONE_KEYS, ...Object.assign({}, ...Object.values(LM_FFN_KEYS)) },
  tables: Object.fromEntries(FFN_KINDS.map((f) => [`lm.${f}`, lmTable(f)])),
  parse: parseLm,
  params: lmParams,
  state: lmState,
  layout(cfg, tokens) {
    const [B, S] = tokens as [number, number];
    const params = shapes('param.', lmParams(cfg));
    const state = shapes('state.', lmState(cfg));
    let reduction = Math.max(B * S, cfg.V);
    if (cfg.ffn.kind === 'monet') reduction = Math.max(reduction, B * S * cfg.ffn.monet.E);
    const layout: KindLayout = {
      inputs: new Map([['in.tokens', [B, S]]]),
      seeds: [],
      differentiableInputs: [],
      params,
      state,
      stateDefault: null, // an lm file names every layer's state
      outputs: new Map([['out.loss', []]]),
      optionalOutputs: new Map([
        ['out.logits', [B, S, cfg.V]],
        ...lmAuxNames(cfg).map((n): [string, number[]] => [`out.loss_${n}`, []]),
      ]),
      idx: new Map(),
      next:
        cfg.mode === 'train' ? new Map([...state].map(([n, s]) => [`next.${n.slice('state.'.length)}`, s])) : new Map(),
      reduction: Math.max(reduction, maxDim(params)),
    };
    return layout;
  },
};

/**
 * Fresh float64 parameters for the reference LM (tests, the demo): weights N(0, std²) drawn in checkpoint order from
 * `rng`, norm scales 1, biases 0; state as its spec says (running mean 0, variance 1).
 */
export function initLm(
  cfg: LmConfig,
  rng: Rng,
  std = 0.02,
): { params: Record<string, Float64Array>; state: Record<string, Float64Array> } {
  const params: Record<string, Float64Array> = {};
  for (const s of lmParams(cfg)) {
    const n = numel(s.shape);
    params[s.name] = s.init === 'normal' ? rng.normals(n, std) : new Float64Array(n).fill(s.init === 'ones' ? 1 : 0);
  }
  const state: Record<string, Float64Array> = {};
  for (const s of lmState(cfg)) state[s.name] = new Float64Array(numel(s.shape)).fill(s.init === 'ones' ? 1 : 0);
  return { params, state };
}
