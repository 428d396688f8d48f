// Llama-style pre-norm decoder LM with a pluggable feed-forward, float64, forward to loss and backward to every
// parameter.
//
// Dimension legend:
//   B sequences, S positions per sequence, T = B·S tokens, V vocabulary, d model dim (hidden_size)
//   L layers, nH query heads, nKV key/value heads, hd = d / nH head dim
//
// One layer i (x is the residual stream, (T, d)):
//   a   = RMSNorm(x; input_layernorm)                                  (T, d)
//   q,k,v = a·Wqᵀ, a·Wkᵀ, a·Wvᵀ;  q,k ← RoPE(q), RoPE(k)                (T, nH·hd), (T, nKV·hd) ×2
//   h   = x + Attn(q, k, v)·Woᵀ                                         (T, d)  causal, grouped KV heads
//   u   = RMSNorm(h; post_attention_layernorm)                         (T, d)
//   x'  = h + FFN_i(u)                                                  (T, d)  FFN chosen by config.ffn
//   x'  ← post_i(x') where the ffn kind defines one (TopK `placement: hidden`)
// Then logits = RMSNorm(x_L; model.norm)·lm_headᵀ (lm_head = embed_tokens when tie_word_embeddings), and
//   out.loss = mean next-token CE + Σ_name coef_name · (aux_name averaged over the layers that produce it).
//
// Feed-forward kinds plug in through the FfnDriver contract of lm-ffn.ts; FFN_DRIVERS (below) lists them. The
// names of every parameter follow the Hugging Face Llama / Mixtral / Monet checkpoint layout (see lmParamSpecs).
// Backward walks the same steps in reverse; every gradient is ACCUMULATED into the caller's buffers.

import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import type { TensorMap } from '../src/tensor.ts';
import { attentionBackward, attentionForward, type AttentionSaved } from './attention.ts';
import {
  CaseInputs,
  cfgAux,
  cfgBool,
  cfgEnum,
  cfgInt,
  cfgNum,
  gradParams,
  put,
  putGrads,
  readParams,
  type Config,
  type ParamSpec,
  type Params,
} from './common.ts';
import { crossEntropyBackward, crossEntropyForward, type CrossEntropySaved } from './cross-entropy.ts';
import {
  denseFfnBackward,
  denseFfnForward,
  denseFfnGrads,
  denseFfnParamSpecs,
  denseFfnWeights,
  parseDenseFfnConfig,
  type DenseFfnConfig,
  type DenseFfnSaved,
} from './dense-ffn.ts';
import { embeddingBackward, embeddingForward } from './embedding.ts';
import { topkMargin } from './margins.ts';
import { parseSmoeConfig, smoeBackward, smoeForward, smoeParamSpecs, type SmoeConfig, type SmoeSaved } from './smoe.ts';
import {
  topkFfnBackward,
  topkFfnForward,
  topkFfnParamSpecs,
  type TopkFfnConfig,
  type TopkFfnSaved,
} from './topk-ffn.ts';
import { parseTopkConfig, topkBackward, topkForward, type TopkSaved } from './topk.ts';
import { linearBackward, linearForward } from './linear.ts';
import type { FfnDriver, FfnLayerCtx, LmConfig, LmDims, LmMode, StateSpec } from './lm-ffn.ts';
import { monetDriver } from './lm-monet.ts';
import { peerDriver } from './lm-peer.ts';
import type { Rng } from './rng.ts';
import { rmsnormBackward, rmsnormForward, type RmsNormSaved } from './rmsnorm.ts';
import { ropeBackward, ropeForward, ropeTables } from './rope.ts';

export type { FfnDriver, FfnLayerCtx, LmConfig, LmDims, StateSpec } from './lm-ffn.ts';

// ---------------------------------------------------------------------------------------------------------------
// Feed-forward drivers. Each one maps the model's per-layer FFN onto a layer file's forward/backward.

/** Dense MLP in every layer: `model.layers.<i>.mlp.{gate_proj,up_proj,down_proj}.weight` (dense-ffn.ts). */
const denseDriver: FfnDriver<DenseFfnConfig, DenseFfnSaved> = {
  parse: (raw, _cfg, where) => parseDenseFfnConfig(raw, where),
  auxNames: () => [],
  paramSpecs: (c) => denseFfnParamSpecs(c).map((s) => ({ ...s, name: `mlp.${s.name}` })),
  stateSpecs: () => [],
  forward: (c, ctx, u, out) => denseFfnForward(out, u, denseFfnWeights(c, ctx.params('mlp.')), c, ctx.dims.T),
  backward: (c, ctx, saved, u, dout, du) =>
    denseFfnBackward(
      du,
      denseFfnGrads(ctx.grads('mlp.')),
      dout,
      u,
      denseFfnWeights(c, ctx.params('mlp.')),
      saved,
      c,
      ctx.dims.T,
    ),
  examples: () => [
    { label: 'dense swiglu', config: { intermediate_size: 12, activation: 'swiglu' } },
    { label: 'dense relu2', config: { intermediate_size: 12, activation: 'relu2' } },
  ],
};

/**
 * SMoE in every layer (smoe.ts), Mixtral names `model.layers.<i>.block_sparse_moe.{gate,experts.<e>.w1/w2/w3}.weight`.
 * Each layer reports loss_balance and loss_z; the LM averages each over the layers.
 */
const smoeDriver: FfnDriver<SmoeConfig, SmoeSaved> = {
  parse: (raw, _cfg, where) => parseSmoeConfig(raw, where),
  auxNames: () => ['balance', 'z'],
  paramSpecs: (c) => smoeParamSpecs(c).map((s) => ({ ...s, name: `block_sparse_moe.${s.name}` })),
  stateSpecs: () => [],
  forward: (c, ctx, u, out) => {
    const saved = smoeForward(out, u, ctx.params('block_sparse_moe.'), c, ctx.dims.T);
    ctx.addAux('balance', saved.lossBalance);
    ctx.addAux('z', saved.lossZ);
    ctx.addMargin(saved.margin);
    return saved;
  },
  backward: (c, ctx, saved, u, dout, du) =>
    smoeBackward(du, ctx.grads('block_sparse_moe.'), dout, u, ctx.params('block_sparse_moe.'), saved, c, ctx.dims.T, {
      balance: ctx.auxGrad('balance'),
      z: ctx.auxGrad('z'),
    }),
  examples: () => [
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
};

/**
 * TopK LM (SPEC §4.3–4.4, our reading). Every MLP is up_proj → ReLU → down_proj (`mlp.up_proj/down_proj.weight`).
 * For layers i < L − n_last_non_topk the TopK activation (topk.ts) is applied:
 *   topk_placement 'ffn'    (default): to the MLP's hidden units (topk-ffn.ts), k of intermediate_size;
 *   topk_placement 'hidden':           to the layer's output residual stream (post map), k of hidden_size.
 * The last n_last_non_topk (default 2) layers stay dense (plain ReLU MLP, no TopK).
 */
interface TopkLmConfig extends TopkFfnConfig {
  placement: 'ffn' | 'hidden';
  nLast: number; // n_last_non_topk
}
type TopkLmSaved = { topk: true; s: TopkFfnSaved } | { topk: false; s: DenseFfnSaved };
const isTopkLayer = (c: TopkLmConfig, cfg: LmConfig, i: number) => i < cfg.L - c.nLast;
const reluMlp = (c: TopkLmConfig): DenseFfnConfig => ({ d: c.d, F: c.F, activation: 'relu' });

const topkDriver: FfnDriver<TopkLmConfig, TopkLmSaved> = {
  parse: (raw, cfg, where) => {
    const F = cfgInt(raw, 'intermediate_size', where);
    const placement = cfgEnum(raw, 'topk_placement', ['ffn', 'hidden'] as const, where, 'ffn');
    const nLast = cfgInt(raw, 'n_last_non_topk', where, 0, 2);
    if (nLast > cfg.L)
      throw new Error(
        `${where}: config.n_last_non_topk: expected at most num_hidden_layers = ${cfg.L}, found ${nLast}`,
      );
    cfgEnum(raw, 'activation', ['relu'], where, 'relu');
    return { d: cfg.d, F, placement, nLast, ...parseTopkConfig(raw, placement === 'ffn' ? F : cfg.d, where) };
  },
  auxNames: () => [],
  paramSpecs: (c) => topkFfnParamSpecs(c).map((s) => ({ ...s, name: `mlp.${s.name}` })),
  stateSpecs: () => [],
  forward: (c, ctx, u, out) => {
    const p = ctx.params('mlp.');
    if (c.placement === 'ffn' && isTopkLayer(c, ctx.cfg, ctx.layer)) {
      const s = topkFfnForward(out, u, p, c, ctx.dims.T);
      ctx.addMargin(topkMargin(s.z, ctx.dims.T, c.F, c.k));
      return { topk: true, s };
    }
    return { topk: false, s: denseFfnForward(out, u, denseFfnWeights(reluMlp(c), p), reluMlp(c), ctx.dims.T) };
  },
  backward: (c, ctx, saved, u, dout, du) => {
    const p = ctx.params('mlp.');
    const g = ctx.grads('mlp.');
    if (saved.topk) topkFfnBackward(du, g, dout, u, p, saved.s, c, ctx.dims.T);
    else
      denseFfnBackward(du, denseFfnGrads(g), dout, u, denseFfnWeights(reluMlp(c), p), saved.s, reluMlp(c), ctx.dims.T);
  },
  postForward: (c, ctx, inp, out) => {
    if (c.placement !== 'hidden' || !isTopkLayer(c, ctx.cfg, ctx.layer)) return null;
    const { T } = ctx.dims;
    ctx.addMargin(topkMargin(inp, T, c.d, c.k));
    return { inp, topk: topkForward(out, inp, T, c.d, c) };
  },
  postBackward: (c, ctx, saved, dout, dinp) => {
    const s = saved as { inp: Float64Array; topk: TopkSaved };
    topkBackward(dinp, dout, s.inp, s.topk, ctx.dims.T, c.d, c);
  },
  examples: () => [
    {
      label: 'topk ffn α=0.4',
      config: { intermediate_size: 12, k: 4, alpha: 0.4, topk_placement: 'ffn', n_last_non_topk: 1 },
    },
    {
      label: 'topk hidden α=0.4',
      config: { intermediate_size: 12, k: 4, alpha: 0.4, topk_placement: 'hidden', n_last_non_topk: 1 },
    },
  ],
};

/**
 * The feed-forward kinds the reference LM supports, by `config.ffn`. The demo, the LM tests and the `lm` case runner
 * all read this list, so a kind added here is exercised everywhere.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const FFN_DRIVERS: Record<string, FfnDriver<any, any>> = {
  dense: denseDriver,
  smoe: smoeDriver,
  topk: topkDriver,
  monet: monetDriver,
  peer: peerDriver,
};

/** The model-wide keys of a tiny LM; the demo and tests merge a driver example's keys over these. */
export const TINY_LM_BASE: Config = {
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

// ---------------------------------------------------------------------------------------------------------------
// Model: parsed config + the chosen driver.

export interface LmModel {
  cfg: LmConfig;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  driver: FfnDriver<any, any>;
  ffnCfg: unknown; // the driver's parsed config
}

export function buildLm(raw: Config, where = 'lm config'): LmModel {
  const ffn = cfgEnum(raw, 'ffn', Object.keys(FFN_DRIVERS), where);
  const d = cfgInt(raw, 'hidden_size', where);
  const nH = cfgInt(raw, 'num_attention_heads', where);
  const nKV = cfgInt(raw, 'num_key_value_heads', where, 1, nH);
  if (d % nH !== 0) throw new Error(`${where}: hidden_size ${d} is not a multiple of num_attention_heads ${nH}`);
  if (nH % nKV !== 0)
    throw new Error(`${where}: num_attention_heads ${nH} is not a multiple of num_key_value_heads ${nKV}`);
  const hd = d / nH;
  if (hd % 2 !== 0) throw new Error(`${where}: head dim hidden_size/num_attention_heads = ${hd} must be even for RoPE`);
  const cfg: LmConfig = {
    V: cfgInt(raw, 'vocab_size', where),
    d,
    L: cfgInt(raw, 'num_hidden_layers', where),
    nH,
    nKV,
    hd,
    eps: cfgNum(raw, 'rms_norm_eps', where, 1e-6),
    theta: cfgNum(raw, 'rope_theta', where, 10000),
    maxPos: cfgInt(raw, 'max_position_embeddings', where),
    tied: cfgBool(raw, 'tie_word_embeddings', where, false),
    ffn,
    mode: cfgEnum<LmMode>(raw, 'mode', ['train', 'eval'], where, 'train'),
    aux: {},
  };
  const driver = FFN_DRIVERS[ffn];
  const ffnCfg = driver.parse(raw, cfg, where);
  const auxNames = driver.auxNames(ffnCfg);
  if (auxNames.length) cfg.aux = cfgAux(raw, auxNames, where);
  else if (raw.aux !== undefined)
    throw new Error(`${where}: config.aux: ffn '${ffn}' produces no aux losses, found ${JSON.stringify(raw.aux)}`);
  return { cfg, driver, ffnCfg };
}

const layerName = (i: number, rest: string): string => `model.layers.${i}.${rest}`;

/** Every parameter of the model under its checkpoint name, in checkpoint order. */
export function lmParamSpecs(m: LmModel): ParamSpec[] {
  const { V, d, L, nH, nKV, hd, tied } = m.cfg;
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [V, d], init: 'normal' }];
  for (let i = 0; i < L; i++) {
    specs.push(
      { name: layerName(i, 'input_layernorm.weight'), shape: [d], init: 'ones' },
      { name: layerName(i, 'self_attn.q_proj.weight'), shape: [nH * hd, d], init: 'normal' },
      { name: layerName(i, 'self_attn.k_proj.weight'), shape: [nKV * hd, d], init: 'normal' },
      { name: layerName(i, 'self_attn.v_proj.weight'), shape: [nKV * hd, d], init: 'normal' },
      { name: layerName(i, 'self_attn.o_proj.weight'), shape: [d, nH * hd], init: 'normal' },
      { name: layerName(i, 'post_attention_layernorm.weight'), shape: [d], init: 'ones' },
    );
    for (const s of m.driver.paramSpecs(m.ffnCfg, m.cfg, i)) specs.push({ ...s, name: layerName(i, s.name) });
  }
  specs.push({ name: 'model.norm.weight', shape: [d], init: 'ones' });
  if (!tied) specs.push({ name: 'lm_head.weight', shape: [V, d], init: 'normal' });
  return specs;
}

/** Every state tensor (BatchNorm running stats), named without the `state.` prefix: `model.layers.<i>.…`. */
export function lmStateSpecs(m: LmModel): StateSpec[] {
  const specs: StateSpec[] = [];
  for (let i = 0; i < m.cfg.L; i++)
    for (const s of m.driver.stateSpecs(m.ffnCfg, m.cfg, i)) specs.push({ ...s, name: layerName(i, s.name) });
  return specs;
}

/** A fresh model: weights N(0, std²), norm weights 1, biases 0; state as its spec says (running_var 1, mean 0). */
export function initLm(m: LmModel, rng: Rng, std = 0.02): { params: Params; state: Params } {
  const params: Params = {};
  for (const s of lmParamSpecs(m)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    params[s.name] = s.init === 'normal' ? rng.normals(n, std) : new Float64Array(n).fill(s.init === 'ones' ? 1 : 0);
  }
  const state: Params = {};
  for (const s of lmStateSpecs(m))
    state[s.name] = new Float64Array(s.shape.reduce((a, b) => a * b, 1)).fill(s.init === 'ones' ? 1 : 0);
  return { params, state };
}

// ---------------------------------------------------------------------------------------------------------------
// The per-layer context handed to drivers.

/** Aux-loss bookkeeping of one pass: raw sums and how many layers produced each name. */
interface AuxBook {
  sum: Record<string, number>;
  count: Record<string, number>;
}

class LayerCtx implements FfnLayerCtx {
  constructor(
    readonly layer: number,
    readonly cfg: LmConfig,
    readonly dims: LmDims,
    private readonly paramRec: Params,
    private readonly gradRec: Params | null,
    private readonly stateRec: Params,
    private readonly nextRec: Params,
    readonly shared: Map<string, unknown>,
    private readonly aux: AuxBook,
    private readonly dloss: number,
    private readonly margins: { min: number },
  ) {}

  private pick(rec: Params, prefix: string, what: string): Params {
    const full = layerName(this.layer, prefix);
    const out: Params = {};
    for (const [k, v] of Object.entries(rec)) if (k.startsWith(full)) out[k.slice(full.length)] = v;
    if (Object.keys(out).length === 0) throw new Error(`lm layer ${this.layer}: no ${what} under '${full}'`);
    return out;
  }
  params(prefix: string): Params {
    return this.pick(this.paramRec, prefix, 'parameters');
  }
  grads(prefix: string): Params {
    if (!this.gradRec) throw new Error(`lm layer ${this.layer}: gradients requested outside backward`);
    return this.pick(this.gradRec, prefix, 'gradient buffers');
  }
  state(prefix: string): Params {
    return this.pick(this.stateRec, prefix, 'state tensors');
  }
  setNext(name: string, value: Float64Array): void {
    this.nextRec[layerName(this.layer, name)] = value;
  }
  addAux(name: string, value: number): void {
    this.aux.sum[name] = (this.aux.sum[name] ?? 0) + value;
    this.aux.count[name] = (this.aux.count[name] ?? 0) + 1;
  }
  auxGrad(name: string): number {
    const n = this.aux.count[name];
    if (!n) throw new Error(`lm layer ${this.layer}: aux '${name}' was never produced in forward`);
    return (this.dloss * (this.cfg.aux[name] ?? 0)) / n;
  }
  addMargin(margin: number): void {
    if (margin < this.margins.min) this.margins.min = margin;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Forward.

/** What one layer's forward saves for backward. */
export interface LayerSaved {
  x: Float64Array; // (T, d) layer input (residual stream)
  a: Float64Array; // (T, d) input_layernorm output
  rms1: RmsNormSaved;
  q: Float64Array; // (T, nH·hd) queries after RoPE
  k: Float64Array; // (T, nKV·hd) keys after RoPE
  v: Float64Array; // (T, nKV·hd)
  attn: AttentionSaved;
  ao: Float64Array; // (T, nH·hd) attention output before o_proj
  h: Float64Array; // (T, d) x + attention
  u: Float64Array; // (T, d) post_attention_layernorm output, the FFN input
  rms2: RmsNormSaved;
  ffn: unknown; // the driver's saved state
  post: unknown | null; // the driver's post-map saved state, null for the identity
}

export interface LmForward {
  loss: number; // CE + Σ coef·aux mean
  ce: number; // mean next-token cross-entropy alone
  aux: Record<string, number>; // raw aux losses, each averaged over the layers producing it (out.loss_<name>)
  logits: Float64Array; // (B, S, V)
  next: Params; // state after the step (names without `next.`), e.g. model.layers.0.router.norm1.running_mean
  margin: number; // smallest relative routing margin over all layers (Infinity if the model routes nothing)
  saved: {
    tokens: Int32Array; // (B, S)
    dims: LmDims;
    layers: LayerSaved[];
    xL: Float64Array; // (T, d) last layer output
    xf: Float64Array; // (T, d) after model.norm
    rmsF: RmsNormSaved;
    ce: CrossEntropySaved;
    state: Params;
    shared: Map<string, unknown>;
    aux: AuxBook;
  };
}

function need(rec: Params, name: string, n: number, what = 'parameter'): Float64Array {
  const a = rec[name];
  if (!a) throw new Error(`lm: missing ${what} ${name}`);
  if (a.length !== n) throw new Error(`lm: ${what} ${name}: expected ${n} values, found ${a.length}`);
  return a;
}

export function lmForward(
  m: LmModel,
  params: Params,
  tokens: Int32Array, // (B, S)
  B: number,
  S: number,
  state: Params = {},
): LmForward {
  const { V, d, L, nH, nKV, hd, eps, theta, maxPos, tied } = m.cfg;
  if (S > maxPos) throw new Error(`lm: sequence length ${S} exceeds max_position_embeddings ${maxPos}`);
  if (tokens.length !== B * S)
    throw new Error(`lm: expected ${B * S} tokens for (B, S) = (${B}, ${S}), found ${tokens.length}`);
  const T = B * S;
  const dims: LmDims = { B, S, T };
  const qd = nH * hd; // query width
  const kvd = nKV * hd; // key/value width
  const rope = ropeTables(S, hd, theta);
  const adims = { B, S, nH, nKV, hd };
  const shared = new Map<string, unknown>();
  const aux: AuxBook = { sum: {}, count: {} };
  const margins = { min: Infinity };
  const next: Params = {};

  let x = new Float64Array(T * d); // (T, d) residual stream
  embeddingForward(x, tokens, need(params, 'model.embed_tokens.weight', V * d), T, V, d);

  const layers: LayerSaved[] = [];
  for (let i = 0; i < L; i++) {
    const P = (rest: string, n: number) => need(params, layerName(i, rest), n);
    const ctx = new LayerCtx(i, m.cfg, dims, params, null, state, next, shared, aux, 1, margins);

    // Attention sub-block.
    const a = new Float64Array(T * d); // (T, d)
    const rms1 = rmsnormForward(a, x, P('input_layernorm.weight', d), T, d, eps);
    const qPre = new Float64Array(T * qd); // (T, nH·hd) before RoPE
    const kPre = new Float64Array(T * kvd); // (T, nKV·hd) before RoPE
    const v = new Float64Array(T * kvd); // (T, nKV·hd)
    linearForward(qPre, a, P('self_attn.q_proj.weight', qd * d), null, T, d, qd);
    linearForward(kPre, a, P('self_attn.k_proj.weight', kvd * d), null, T, d, kvd);
    linearForward(v, a, P('self_attn.v_proj.weight', kvd * d), null, T, d, kvd);
    const q = new Float64Array(T * qd); // (T, nH·hd)
    const k = new Float64Array(T * kvd); // (T, nKV·hd)
    ropeForward(q, qPre, rope, B, S, nH, hd);
    ropeForward(k, kPre, rope, B, S, nKV, hd);
    const ao = new Float64Array(T * qd); // (T, nH·hd)
    const attn = attentionForward(ao, q, k, v, adims);
    const h = new Float64Array(T * d); // (T, d)
    linearForward(h, ao, P('self_attn.o_proj.weight', d * qd), null, T, qd, d);
    for (let j = 0; j < T * d; j++) h[j] += x[j]; // residual

    // Feed-forward sub-block.
    const u = new Float64Array(T * d); // (T, d)
    const rms2 = rmsnormForward(u, h, P('post_attention_layernorm.weight', d), T, d, eps);
    const f = new Float64Array(T * d); // (T, d)
    const ffn = m.driver.forward(m.ffnCfg, ctx, u, f);
    let out = new Float64Array(T * d); // (T, d)
    for (let j = 0; j < T * d; j++) out[j] = h[j] + f[j]; // residual
    let post: unknown | null = null;
    if (m.driver.postForward) {
      const mapped = new Float64Array(T * d); // (T, d)
      post = m.driver.postForward(m.ffnCfg, ctx, out, mapped);
      if (post !== null) out = mapped;
    }
    layers.push({ x, a, rms1, q, k, v, attn, ao, h, u, rms2, ffn, post });
    x = out;
  }

  // Head.
  const xf = new Float64Array(T * d); // (T, d)
  const rmsF = rmsnormForward(xf, x, need(params, 'model.norm.weight', d), T, d, eps);
  const head = tied ? params['model.embed_tokens.weight'] : need(params, 'lm_head.weight', V * d);
  const logits = new Float64Array(T * V); // (B, S, V)
  linearForward(logits, xf, head, null, T, d, V);
  const ceRes = crossEntropyForward(logits, tokens, B, S, V);

  const auxMean: Record<string, number> = {};
  let loss = ceRes.loss;
  for (const name of Object.keys(m.cfg.aux)) {
    if (!aux.count[name]) throw new Error(`lm: config.aux.${name} is set but no layer produced loss_${name}`);
    auxMean[name] = aux.sum[name] / aux.count[name];
    loss += m.cfg.aux[name] * auxMean[name];
  }
  return {
    loss,
    ce: ceRes.loss,
    aux: auxMean,
    logits,
    next,
    margin: margins.min,
    saved: { tokens, dims, layers, xL: x, xf, rmsF, ce: ceRes.saved, state, shared, aux },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Backward.

/** Accumulates ∂(dloss · out.loss)/∂param into grads[name] for every parameter (grads must hold every name). */
export function lmBackward(m: LmModel, params: Params, fwd: LmForward, grads: Params, dloss = 1): void {
  const { V, d, L, nH, nKV, hd, eps, theta, tied } = m.cfg;
  const { tokens, dims, layers, xL, xf, rmsF, state, shared, aux } = fwd.saved;
  const { B, S, T } = dims;
  const qd = nH * hd;
  const kvd = nKV * hd;
  const rope = ropeTables(S, hd, theta);
  const adims = { B, S, nH, nKV, hd };
  const margins = { min: Infinity };
  const G = (name: string, n: number) => need(grads, name, n, 'gradient buffer');
  const P = (name: string, n: number) => need(params, name, n);

  // Head: logits = xf·headᵀ, CE.
  const dlogits = new Float64Array(T * V); // (B, S, V)
  crossEntropyBackward(dlogits, fwd.saved.ce, tokens, B, S, V, dloss);
  const headName = tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const dxf = new Float64Array(T * d); // (T, d)
  linearBackward(dxf, G(headName, V * d), null, dlogits, xf, P(headName, V * d), T, d, V);
  let dx = new Float64Array(T * d); // (T, d) gradient of the residual stream, walking down the layers
  rmsnormBackward(dx, G('model.norm.weight', d), dxf, xL, P('model.norm.weight', d), rmsF, T, d);

  for (let i = L - 1; i >= 0; i--) {
    const s = layers[i];
    const ln = (rest: string) => layerName(i, rest);
    const ctx = new LayerCtx(i, m.cfg, dims, params, grads, state, {}, shared, aux, dloss, margins);

    // Post map (identity for most kinds): dOut → gradient of h + f.
    let dpre = dx; // (T, d)
    if (s.post !== null && m.driver.postBackward) {
      dpre = new Float64Array(T * d);
      m.driver.postBackward(m.ffnCfg, ctx, s.post, dx, dpre);
    }

    // Feed-forward sub-block: out = h + FFN(RMSNorm(h)).
    const dh = Float64Array.from(dpre); // (T, d) residual path
    const du = new Float64Array(T * d); // (T, d)
    m.driver.backward(m.ffnCfg, ctx, s.ffn, s.u, dpre, du);
    rmsnormBackward(
      dh,
      G(ln('post_attention_layernorm.weight'), d),
      du,
      s.h,
      P(ln('post_attention_layernorm.weight'), d),
      s.rms2,
      T,
      d,
    );

    // Attention sub-block: h = x + o_proj(Attn(RoPE(q_proj a), RoPE(k_proj a), v_proj a)).
    const dao = new Float64Array(T * qd); // (T, nH·hd)
    linearBackward(
      dao,
      G(ln('self_attn.o_proj.weight'), d * qd),
      null,
      dh,
      s.ao,
      P(ln('self_attn.o_proj.weight'), d * qd),
      T,
      qd,
      d,
    );
    const dq = new Float64Array(T * qd); // (T, nH·hd) after RoPE
    const dk = new Float64Array(T * kvd); // (T, nKV·hd) after RoPE
    const dv = new Float64Array(T * kvd); // (T, nKV·hd)
    attentionBackward(dq, dk, dv, dao, s.q, s.k, s.v, s.attn, adims);
    const dqPre = new Float64Array(T * qd); // (T, nH·hd)
    const dkPre = new Float64Array(T * kvd); // (T, nKV·hd)
    ropeBackward(dqPre, dq, rope, B, S, nH, hd);
    ropeBackward(dkPre, dk, rope, B, S, nKV, hd);
    const da = new Float64Array(T * d); // (T, d)
    linearBackward(
      da,
      G(ln('self_attn.q_proj.weight'), qd * d),
      null,
      dqPre,
      s.a,
      P(ln('self_attn.q_proj.weight'), qd * d),
      T,
      d,
      qd,
    );
    linearBackward(
      da,
      G(ln('self_attn.k_proj.weight'), kvd * d),
      null,
      dkPre,
      s.a,
      P(ln('self_attn.k_proj.weight'), kvd * d),
      T,
      d,
      kvd,
    );
    linearBackward(
      da,
      G(ln('self_attn.v_proj.weight'), kvd * d),
      null,
      dv,
      s.a,
      P(ln('self_attn.v_proj.weight'), kvd * d),
      T,
      d,
      kvd,
    );
    const dxIn = Float64Array.from(dh); // (T, d) residual path
    rmsnormBackward(
      dxIn,
      G(ln('input_layernorm.weight'), d),
      da,
      s.x,
      P(ln('input_layernorm.weight'), d),
      s.rms1,
      T,
      d,
    );
    dx = dxIn;
  }
  embeddingBackward(G('model.embed_tokens.weight', V * d), dx, tokens, T, d);
}

// ---------------------------------------------------------------------------------------------------------------
// Fixture case `lm`.

/**
 * in.tokens (B, S) I32/I64, param.<checkpoint names>, state.<names> → out.loss, out.loss_<aux> (averaged over the
 * producing layers), out.logits (B, S, V), next.<state names>, grad.param.<names>. Objective: L = out.loss.
 */
export function runLmCase(c: FixtureCase, opts?: RunOptions): TensorMap {
  const inp = new CaseInputs(c);
  const m = buildLm(c.config, inp.where);
  const shape = inp.shapeOf('in.tokens');
  if (shape.length !== 2) throw new Error(`${inp.where}: in.tokens: expected shape [B, S], found [${shape}]`);
  const [B, S] = shape;
  const tokens = inp.i32('in.tokens', [B, S]); // (B, S)
  // The embedding checks every id too, but only this level knows the file and tensor to name.
  for (let i = 0; i < tokens.length; i++) {
    if (!(tokens[i] >= 0 && tokens[i] < m.cfg.V))
      throw new Error(
        `${inp.where}: tensor in.tokens: token id ${tokens[i]} at position ${i} is outside [0, ${m.cfg.V}) (config.vocab_size; row ${Math.floor(i / S)}, column ${i % S})`,
      );
  }
  const specs = lmParamSpecs(m);
  const params = readParams(inp, specs);
  const state: Params = {};
  for (const s of lmStateSpecs(m)) state[s.name] = inp.f64(`state.${s.name}`, s.shape);
  inp.assertAllUsed();

  const fwd = lmForward(m, params, tokens, B, S, state);
  const out: TensorMap = new Map();
  put(out, 'out.loss', [], [fwd.loss]);
  for (const [name, v] of Object.entries(fwd.aux)) put(out, `out.loss_${name}`, [], [v]);
  put(out, 'out.logits', [B, S, m.cfg.V], fwd.logits);
  for (const s of lmStateSpecs(m)) {
    const v = fwd.next[s.name];
    if (v) put(out, `next.${s.name}`, s.shape, v);
  }
  if (opts?.forwardOnly) return out;
  const grads = gradParams(opts, specs);
  lmBackward(m, params, fwd, grads);
  putGrads(out, specs, grads);
  return out;
}
