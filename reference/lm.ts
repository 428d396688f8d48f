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
// Feed-forward kinds plug in through the pass contract of lm-ffn.ts (newFfnPass below picks one by config.ffn). The
// names of every parameter follow the Hugging Face Llama / Mixtral / Monet checkpoint layout (the list, with shapes,
// is src/kinds/lm.ts). Backward walks the same steps in reverse; every gradient is ACCUMULATED into the caller's
// buffers.

import { attentionBackward, attentionForward, type AttentionSaved } from './attention.ts';
import type { Params } from './common.ts';
import { crossEntropyBackward, crossEntropyForward, type CrossEntropySaved } from './cross-entropy.ts';
import { embeddingBackward, embeddingForward } from './embedding.ts';
import { linearBackward, linearForward } from './linear.ts';
import {
  DensePass,
  ffnAuxCoefs,
  SmoePass,
  TopkPass,
  type FfnBackwardCtx,
  type FfnConfig,
  type FfnForwardCtx,
  type FfnPass,
  type LmDims,
  type LmMode,
} from './lm-ffn.ts';
import { MonetPass } from './lm-monet.ts';
import { PeerPass } from './lm-peer.ts';
import { rmsnormBackward, rmsnormForward, type RmsNormSaved } from './rmsnorm.ts';
import { ropeBackward, ropeForward, ropeTables } from './rope.ts';

export type { FfnConfig, LmDims, LmMode } from './lm-ffn.ts';

/** The model's hyperparameters (Hugging Face Llama keys in comments); src/kinds/lm.ts reads them from a config. */
export interface LmConfig {
  V: number; // vocab_size
  d: number; // hidden_size
  L: number; // num_hidden_layers
  nH: number; // num_attention_heads
  nKV: number; // num_key_value_heads
  hd: number; // head dim = hidden_size / num_attention_heads
  eps: number; // rms_norm_eps
  theta: number; // rope_theta
  maxPos: number; // max_position_embeddings
  tied: boolean; // tie_word_embeddings: logits use model.embed_tokens.weight, no lm_head.weight
  mode: LmMode; // train: BatchNorms use batch statistics and update running stats; eval: running stats
  ffn: FfnConfig; // the feed-forward kind (config.ffn) and its keys
}

/** Every feed-forward pass the reference LM can run (each has a `kind` and its layers' saved values). */
export type AnyFfnPass = DensePass | SmoePass | TopkPass | PeerPass | MonetPass;

/** A fresh pass of the model's feed-forward kind, for one forward and its backward. */
export function newFfnPass(cfg: LmConfig): AnyFfnPass {
  const f = cfg.ffn;
  switch (f.kind) {
    case 'dense':
      return new DensePass(f.mlp);
    case 'smoe':
      return new SmoePass(f.smoe);
    case 'topk':
      return new TopkPass(f.topk, cfg.L);
    case 'peer':
      return new PeerPass(f.peer, f.layers, f.dense);
    case 'monet':
      return new MonetPass(f.monet, f.groups, f.decompose);
  }
}

const layerName = (i: number, rest: string): string => `model.layers.${i}.${rest}`;

// ---------------------------------------------------------------------------------------------------------------
// The contexts a feed-forward pass sees, one per layer, built from one named record per pass.

/** Aux-loss bookkeeping of one pass: raw sums and how many layers produced each name. */
interface AuxBook {
  sum: Record<string, number>;
  count: Record<string, number>;
}

/** The records a forward pass reads and writes (parameters, state before the step, state after it, aux losses). */
interface ForwardRecords {
  dims: LmDims;
  params: Params;
  state: Params;
  next: Params;
  aux: AuxBook;
}

/** The records a backward pass reads and writes. */
interface BackwardRecords {
  dims: LmDims;
  params: Params;
  grads: Params;
  aux: AuxBook;
  auxCoefs: Record<string, number>;
  dloss: number; // upstream gradient of out.loss
}

/** The entries of `rec` under `model.layers.<layer>.<prefix>`, keyed without it (the same arrays, not copies). */
function pick(rec: Params, layer: number, prefix: string, what: string): Params {
  const full = layerName(layer, prefix);
  const out: Params = {};
  for (const k of Object.keys(rec)) if (k.startsWith(full)) out[k.slice(full.length)] = rec[k];
  if (Object.keys(out).length === 0) throw new Error(`lm layer ${layer}: no ${what} under '${full}'`);
  return out;
}

function forwardCtx(r: ForwardRecords, layer: number): FfnForwardCtx {
  return {
    layer,
    dims: r.dims,
    params: (prefix) => pick(r.params, layer, prefix, 'parameters'),
    state: (prefix) => pick(r.state, layer, prefix, 'state tensors'),
    setNext: (name, value) => {
      r.next[layerName(layer, name)] = value;
    },
    addAux: (name, value) => {
      r.aux.sum[name] = (r.aux.sum[name] ?? 0) + value;
      r.aux.count[name] = (r.aux.count[name] ?? 0) + 1;
    },
  };
}

function backwardCtx(r: BackwardRecords, layer: number): FfnBackwardCtx {
  return {
    layer,
    dims: r.dims,
    params: (prefix) => pick(r.params, layer, prefix, 'parameters'),
    grads: (prefix) => pick(r.grads, layer, prefix, 'gradient buffers'),
    auxGrad: (name) => {
      const n = r.aux.count[name];
      if (!n) throw new Error(`lm layer ${layer}: aux '${name}' was never produced in forward`);
      return (r.dloss * (r.auxCoefs[name] ?? 0)) / n;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Forward.

/** What one layer's forward saves for backward (the feed-forward's own values live in the pass). */
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
  posted: boolean; // the ffn kind mapped this layer's output (postForward returned true)
}

export interface LmForward {
  loss: number; // CE + Σ coef·aux mean
  ce: number; // mean next-token cross-entropy alone
  aux: Record<string, number>; // raw aux losses, each averaged over the layers producing it (out.loss_<name>)
  logits: Float64Array; // (B, S, V)
  next: Params; // state after the step (names without `next.`), e.g. model.layers.0.router.norm1.running_mean
  saved: {
    tokens: Int32Array; // (B, S)
    dims: LmDims;
    layers: LayerSaved[];
    ffn: AnyFfnPass; // the feed-forward pass, with every layer's saved values
    xL: Float64Array; // (T, d) last layer output
    xf: Float64Array; // (T, d) after model.norm
    rmsF: RmsNormSaved;
    ce: CrossEntropySaved;
    aux: AuxBook;
  };
}

/** Optional hooks into a forward (the interpretability tools read and edit each feed-forward's output). */
export interface LmForwardHooks {
  /** After layer ctx.layer's FFN forward: u (T, d) its input, out (T, d) its output (before the residual add). */
  afterFfn?(ctx: FfnForwardCtx, pass: AnyFfnPass, u: Float64Array, out: Float64Array): void;
  /** After a post map of the layer output (TopK placement 'hidden'): out (T, d) is the new residual stream. */
  afterPost?(ctx: FfnForwardCtx, pass: AnyFfnPass, out: Float64Array): void;
}

function need(rec: Params, name: string, n: number, what = 'parameter'): Float64Array {
  const a = rec[name];
  if (!a) throw new Error(`lm: missing ${what} ${name}`);
  if (a.length !== n) throw new Error(`lm: ${what} ${name}: expected ${n} values, found ${a.length}`);
  return a;
}

export function lmForward(
  cfg: LmConfig,
  params: Params,
  tokens: Int32Array, // (B, S)
  B: number,
  S: number,
  state: Params = {},
  hooks: LmForwardHooks = {},
): LmForward {
  const { V, d, L, nH, nKV, hd, eps, theta, maxPos, tied } = cfg;
  if (S > maxPos) throw new Error(`lm: sequence length ${S} exceeds max_position_embeddings ${maxPos}`);
  if (tokens.length !== B * S)
    throw new Error(`lm: expected ${B * S} tokens for (B, S) = (${B}, ${S}), found ${tokens.length}`);
  const T = B * S;
  const dims: LmDims = { B, S, T };
  const qd = nH * hd; // query width
  const kvd = nKV * hd; // key/value width
  const rope = ropeTables(S, hd, theta);
  const adims = { B, S, nH, nKV, hd };
  const ffn = newFfnPass(cfg);
  const pass: FfnPass = ffn; // the contract's view of it
  const rec: ForwardRecords = { dims, params, state, next: {}, aux: { sum: {}, count: {} } };

  let x = new Float64Array(T * d); // (T, d) residual stream
  embeddingForward(x, tokens, need(params, 'model.embed_tokens.weight', V * d), T, V, d);

  const layers: LayerSaved[] = [];
  for (let i = 0; i < L; i++) {
    const P = (rest: string, n: number) => need(params, layerName(i, rest), n);
    const ctx = forwardCtx(rec, i);

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
    pass.forward(ctx, u, f);
    hooks.afterFfn?.(ctx, ffn, u, f);
    let out = new Float64Array(T * d); // (T, d)
    for (let j = 0; j < T * d; j++) out[j] = h[j] + f[j]; // residual
    let posted = false;
    if (pass.postForward) {
      const mapped = new Float64Array(T * d); // (T, d)
      posted = pass.postForward(ctx, out, mapped);
      if (posted) {
        out = mapped;
        hooks.afterPost?.(ctx, ffn, out);
      }
    }
    layers.push({ x, a, rms1, q, k, v, attn, ao, h, u, rms2, posted });
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
  for (const [name, coef] of Object.entries(ffnAuxCoefs(cfg.ffn))) {
    if (!rec.aux.count[name]) throw new Error(`lm: config.aux.${name} is set but no layer produced loss_${name}`);
    auxMean[name] = rec.aux.sum[name] / rec.aux.count[name];
    loss += coef * auxMean[name];
  }
  return {
    loss,
    ce: ceRes.loss,
    aux: auxMean,
    logits,
    next: rec.next,
    saved: { tokens, dims, layers, ffn, xL: x, xf, rmsF, ce: ceRes.saved, aux: rec.aux },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Backward.

/**
 * Optional read-only callbacks of lmBackward: the gradient at the points where the interpretability tools change a
 * layer (src/interp/model.ts). Each array is the backward's own buffer, valid only during the call.
 */
export interface LmBackwardHooks {
  /** ∂(dloss · out.loss)/∂f (T, d), f = FFN_i(u) the feed-forward output of layer i, before the residual add. */
  ffnOutGrad?(layer: number, grad: Float64Array): void;
  /** ∂(dloss · out.loss)/∂x' (T, d), x' the output of layer i's post map; only for layers whose post map ran. */
  postOutGrad?(layer: number, grad: Float64Array): void;
}

/** Accumulates ∂(dloss · out.loss)/∂param into grads[name] for every parameter (grads must hold every name). */
export function lmBackward(
  cfg: LmConfig,
  params: Params,
  fwd: LmForward,
  grads: Params,
  dloss = 1,
  hooks: LmBackwardHooks = {},
): void {
  const { V, d, L, nH, nKV, hd, theta, tied } = cfg;
  const { tokens, dims, layers, xL, xf, rmsF } = fwd.saved;
  const pass: FfnPass = fwd.saved.ffn;
  const { B, S, T } = dims;
  const qd = nH * hd;
  const kvd = nKV * hd;
  const rope = ropeTables(S, hd, theta);
  const adims = { B, S, nH, nKV, hd };
  const rec: BackwardRecords = { dims, params, grads, aux: fwd.saved.aux, auxCoefs: ffnAuxCoefs(cfg.ffn), dloss };
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
    const ctx = backwardCtx(rec, i);

    // Post map (identity for most kinds): dOut → gradient of h + f.
    let dpre = dx; // (T, d)
    if (s.posted && pass.postBackward) {
      hooks.postOutGrad?.(i, dx);
      dpre = new Float64Array(T * d);
      pass.postBackward(ctx, dx, dpre);
    }
    hooks.ffnOutGrad?.(i, dpre); // out = h + f: the gradient of f is that of h + f

    // Feed-forward sub-block: out = h + FFN(RMSNorm(h)).
    const dh = Float64Array.from(dpre); // (T, d) residual path
    const du = new Float64Array(T * d); // (T, d)
    pass.backward(ctx, s.u, dpre, du);
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
    const wo = ln('self_attn.o_proj.weight');
    linearBackward(dao, G(wo, d * qd), null, dh, s.ao, P(wo, d * qd), T, qd, d);
    const dq = new Float64Array(T * qd); // (T, nH·hd) after RoPE
    const dk = new Float64Array(T * kvd); // (T, nKV·hd) after RoPE
    const dv = new Float64Array(T * kvd); // (T, nKV·hd)
    attentionBackward(dq, dk, dv, dao, s.q, s.k, s.v, s.attn, adims);
    const dqPre = new Float64Array(T * qd); // (T, nH·hd)
    const dkPre = new Float64Array(T * kvd); // (T, nKV·hd)
    ropeBackward(dqPre, dq, rope, B, S, nH, hd);
    ropeBackward(dkPre, dk, rope, B, S, nKV, hd);
    const da = new Float64Array(T * d); // (T, d)
    const wq = ln('self_attn.q_proj.weight');
    const wk = ln('self_attn.k_proj.weight');
    const wv = ln('self_attn.v_proj.weight');
    linearBackward(da, G(wq, qd * d), null, dqPre, s.a, P(wq, qd * d), T, d, qd);
    linearBackward(da, G(wk, kvd * d), null, dkPre, s.a, P(wk, kvd * d), T, d, kvd);
    linearBackward(da, G(wv, kvd * d), null, dv, s.a, P(wv, kvd * d), T, d, kvd);
    const dxIn = Float64Array.from(dh); // (T, d) residual path
    const w1 = ln('input_layernorm.weight');
    rmsnormBackward(dxIn, G(w1, d), da, s.x, P(w1, d), s.rms1, T, d);
    dx = dxIn;
  }
  embeddingBackward(G('model.embed_tokens.weight', V * d), dx, tokens, T, d);
}
