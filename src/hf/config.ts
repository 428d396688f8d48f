// The Hugging Face `config.json` of a MonetLLM folder (model_type "monet": a Llama config plus the moe_* keys) read
// into this project's model config. Every key that changes the forward pass is either translated or refused with
// the key's name; keys that only matter to training or to other frameworks are listed as ignored.
//
// Translation (HF key → ours): the Llama keys keep their names; num_key_value_heads null → num_attention_heads;
// moe_experts/moe_heads/moe_topk/moe_dim/moe_groups/moe_decompose unchanged; hidden_act must be relu2. Added:
// ffn 'monet', mode 'eval' (routers normalise with the BatchNorm running statistics), BatchNorm ε 1e-5 (PyTorch's
// BatchNorm1d default; the config does not carry it) and the paper's aux-loss coefficients (1e-3; they only enter a
// training loss, never the cross-entropy or the generated tokens).

import type { ModelConfig } from '../train/presets.ts';
import { validateConfig } from '../train/presets.ts';

export interface HfModelInfo {
  config: ModelConfig;
  /** Token ids that end generation (config eos_token_id, overridden by generation_config.json). */
  eos: number[];
  bos: number | null;
  /** `torch_dtype` as written (bfloat16 for the released models), or null. */
  torchDtype: string | null;
  /** One line per key read but not used, for `--verbose` and the docs. */
  notes: string[];
}

/** Keys that do not change inference here: read, reported, not used. */
const IGNORED: Record<string, string> = {
  architectures: 'class names for transformers',
  auto_map: 'code locations for transformers',
  _name_or_path: 'where transformers loaded it from',
  transformers_version: 'the writer version',
  torch_dtype: 'storage dtype (each tensor says its own)',
  dtype: 'storage dtype (each tensor says its own)',
  initializer_range: 'initialisation only',
  use_cache: 'transformers option (the KV cache is always used here)',
  pretraining_tp: 'tensor-parallel split of the same matmuls',
  attention_dropout: 'training only',
  output_router_probs: 'transformers output option',
  pad_token_id: 'padding (no padding here)',
  intermediate_size: 'Monet has no dense MLP',
  mlp_bias: 'Monet has no dense MLP',
  tokenizer_class: 'the tokenizer files say it',
  bos_token_id: 'used by the tokenizer',
  eos_token_id: 'stops generation',
};

function num(raw: Record<string, unknown>, key: string, where: string, dflt?: number, int = true): number {
  const v = raw[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v <= 0)
    throw new Error(
      `${where}: '${key}' must be a positive ${int ? 'integer' : 'number'}, found ${JSON.stringify(raw[key])}`,
    );
  return v;
}

function ids(v: unknown, key: string, where: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isInteger(x) && x >= 0))
    throw new Error(`${where}: '${key}' must be a token id or a list of them, found ${JSON.stringify(v)}`);
  return list as number[];
}

/** Parse the object of a MonetLLM `config.json`; `where` names the file in errors. */
export function parseHfConfig(raw: unknown, where: string): HfModelInfo {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${where}: expected a JSON object (a Hugging Face model config)`);
  const c = raw as Record<string, unknown>;
  if (c.model_type !== 'monet')
    throw new Error(
      `${where}: 'model_type' is ${JSON.stringify(c.model_type)}; expected "monet" (a MonetLLM checkpoint; other ` +
        `architectures are not supported)`,
    );
  const refuse = (key: string, ok: (v: unknown) => boolean, what: string) => {
    if (c[key] !== undefined && !ok(c[key]))
      throw new Error(`${where}: '${key}' is ${JSON.stringify(c[key])}; only ${what} is supported`);
  };
  refuse('rope_scaling', (v) => v === null, 'null (plain RoPE; scaled RoPE kinds are not implemented)');
  refuse('attention_bias', (v) => v === false, 'false (q/k/v/o projections without bias)');
  refuse('hidden_act', (v) => v === 'relu2', '"relu2" (Monet experts use squared ReLU)');
  refuse('moe_decompose', (v) => v === 'vertical' || v === 'horizontal', '"vertical" or "horizontal"');
  refuse('tie_word_embeddings', (v) => typeof v === 'boolean', 'true or false');
  const d = num(c, 'hidden_size', where);
  const nH = num(c, 'num_attention_heads', where);
  refuse('head_dim', (v) => v === d / nH, `hidden_size / num_attention_heads = ${d / nH}`);
  const notes: string[] = [];
  const known = new Set([
    'model_type',
    'rope_scaling',
    'attention_bias',
    'hidden_act',
    'head_dim',
    'vocab_size',
    'hidden_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'rms_norm_eps',
    'rope_theta',
    'max_position_embeddings',
    'tie_word_embeddings',
    'moe_experts',
    'moe_heads',
    'moe_topk',
    'moe_dim',
    'moe_groups',
    'moe_decompose',
  ]);
  for (const [k, v] of Object.entries(c)) {
    if (known.has(k)) continue;
    if (k === 'intermediate_size' && v === null) continue;
    notes.push(`${where}: '${k}' ignored (${IGNORED[k] ?? 'not a key that changes inference here'})`);
  }
  const config: ModelConfig = {
    vocab_size: num(c, 'vocab_size', where, 32000),
    hidden_size: d,
    num_hidden_layers: num(c, 'num_hidden_layers', where),
    num_attention_heads: nH,
    num_key_value_heads: num(c, 'num_key_value_heads', where, nH),
    rms_norm_eps: num(c, 'rms_norm_eps', where, 1e-6, false),
    rope_theta: num(c, 'rope_theta', where, 10000, false),
    max_position_embeddings: num(c, 'max_position_embeddings', where, 2048),
    tie_word_embeddings: (c.tie_word_embeddings as boolean | undefined) ?? false,
    ffn: 'monet',
    mode: 'eval',
    moe_experts: num(c, 'moe_experts', where),
    moe_heads: num(c, 'moe_heads', where),
    moe_topk: num(c, 'moe_topk', where),
    moe_dim: num(c, 'moe_dim', where),
    moe_groups: num(c, 'moe_groups', where),
    moe_decompose: (c.moe_decompose as 'vertical' | 'horizontal' | undefined) ?? 'vertical',
    hidden_act: 'relu2',
    aux: { unif: 1e-3, amb: 1e-3 },
    unif_eps: 1e-10,
    bn_eps: 1e-5,
    bn_momentum: 0.1,
  };
  try {
    validateConfig(config);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  const topk = config.moe_topk!;
  if (topk >= config.moe_experts!)
    throw new Error(`${where}: 'moe_topk' ${topk} must be less than 'moe_experts' ${config.moe_experts}`);
  const bos = ids(c.bos_token_id, 'bos_token_id', where);
  return {
    config,
    eos: ids(c.eos_token_id, 'eos_token_id', where),
    bos: bos.length > 0 ? bos[0] : null,
    torchDtype: typeof c.torch_dtype === 'string' ? c.torch_dtype : null,
    notes,
  };
}

/** The MonetLLM `config.json` object for one of our Monet model configs (the way out: monet export --hf). */
export function hfConfigOf(c: ModelConfig, torchDtype: 'bfloat16' | 'float32'): object {
  if (c.ffn !== 'monet')
    throw new Error(`export --hf: only Monet models have a MonetLLM layout; this is ffn '${c.ffn}'`);
  return {
    architectures: ['MonetForCausalLM'],
    model_type: 'monet',
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: null,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    hidden_act: 'relu2',
    max_position_embeddings: c.max_position_embeddings,
    initializer_range: 0.02,
    rms_norm_eps: c.rms_norm_eps,
    use_cache: true,
    bos_token_id: null, // our run folders use the byte tokenizer: no special tokens
    eos_token_id: null,
    pretraining_tp: 1,
    tie_word_embeddings: c.tie_word_embeddings,
    rope_theta: c.rope_theta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: null,
    moe_dim: c.moe_dim,
    moe_heads: c.moe_heads,
    moe_experts: c.moe_experts,
    moe_topk: c.moe_topk,
    moe_groups: c.moe_groups,
    moe_decompose: c.moe_decompose,
    output_router_probs: false,
    torch_dtype: torchDtype,
  };
}

/** eos ids of a `generation_config.json` object (undefined when it names none). */
export function parseGenerationConfig(raw: unknown, where: string): { eos?: number[]; bos?: number } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`${where}: expected a JSON object (a Hugging Face generation config)`);
  const g = raw as Record<string, unknown>;
  const eos = ids(g.eos_token_id, 'eos_token_id', where);
  const bos = ids(g.bos_token_id, 'bos_token_id', where);
  return { eos: eos.length > 0 ? eos : undefined, bos: bos.length > 0 ? bos[0] : undefined };
}
