// Llama-style pre-norm decoder LM on a Device (float32), every ffn kind, forward to loss and backward to every
// parameter — the twin of reference/lm.ts.
//
// Dimension legend:
//   B sequences, S positions, T = B·S tokens, V vocabulary, d model dim, L layers, nH query heads, nKV key/value
//   heads, hd = d / nH head dim
//
// One layer i (h is the residual stream, (T, d)):
//   a = RMSNorm(h; input_layernorm);  q, k, v = a·Wqᵀ, a·Wkᵀ, a·Wvᵀ;  q, k ← RoPE
//   h1 = h + Attn(q, k, v)·Woᵀ;  u = RMSNorm(h1; post_attention_layernorm);  h2 = h1 + FFN_i(u)
//   TopK `placement: hidden`: h2 ← TopK(h2) on layers i < L − n_last_non_topk
// logits = RMSNorm(h_L; model.norm)·headᵀ (head = embed_tokens when tied); out.loss = mean next-token CE +
// Σ_name coef_name·(aux averaged over the layers — for Monet, the routers — that produce it).
// The feed-forward of each layer is a pass of the model's ffn kind (lm-ffn.ts), on the same contract as the
// reference LM's (reference/lm-ffn.ts): dense; smoe (block_sparse_moe.*); topk; peer; monet. Parameter names and
// shapes are the `lm` kind's declaration (src/kinds/lm.ts). Backward walks the same steps in reverse and accumulates
// into the gradient buffers.

import type { LmConfig } from '../../reference/lm.ts';
import type { LmDims } from '../../reference/lm-ffn.ts';
import { Scope } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { lmAuxNames } from '../kinds/lm.ts';
import { embedRows, linearBackward, linearForward, type PackedBf16, type Weight } from './common.ts';
import {
  auxProducers,
  newDeviceFfnPass,
  type AnyDeviceFfnPass,
  type DeviceFfnBackwardCtx,
  type DeviceFfnForwardCtx,
  type DeviceFfnPass,
} from './lm-ffn.ts';

export type { LmConfig } from '../../reference/lm.ts';

/** The model on a device: parameters, their gradients (null in forward-only use) and state, by full name. */
export interface LmModel {
  cfg: LmConfig;
  params: Map<string, F32>;
  grads: Map<string, F32> | null;
  state: Map<string, F32>;
  /** Forward-only taps for the interpretability tools (src/interp/wasm-forward.ts); absent in training. */
  hooks?: LmHooks;
  /**
   * Weight matrices kept as bfloat16 on the device (a downloaded 16-bit checkpoint; inference only), by full name:
   * the forward's matrix products and the embedding lookup read these in place of `params` (weightOf).
   */
  packed?: ReadonlyMap<string, PackedBf16>;
}

/** The weight matrix `name` as a forward reads it: kept 16-bit when the model holds it so, else float32. */
export function weightOf(m: LmModel, name: string): Weight {
  return m.packed?.get(name) ?? need(m.params, name, 'parameter');
}

/**
 * Called during lmForward, in order, with the tensors of the layer just computed. A hook may read them and change
 * `out` (with kernels, or directly on a host-memory device); the forward then continues from `out`.
 */
export interface LmHooks {
  /**
   * After layer i's feed-forward: u (T, d) its input, out (T, d) its output before the residual add; `ffn` is the
   * feed-forward pass, which holds what the layer saved (and, for Monet, its group's routing).
   */
  afterFfn?(sc: Scope, layer: number, io: { u: F32; out: F32; ffn: AnyDeviceFfnPass }): void;
  /** After a TopK `placement: hidden` map: out (T, d) is the layer's new residual stream. */
  afterHidden?(sc: Scope, layer: number, out: F32): void;
}

interface LayerSaved {
  h: F32; // (T, d) layer input (residual stream)
  a: F32; // (T, d) input_layernorm output
  rstd1: F32; // (T)
  q: F32; // (T, nH·hd) after RoPE
  k: F32; // (T, nKV·hd) after RoPE
  v: F32; // (T, nKV·hd)
  probs: F32; // (B, nH, S, S)
  att: F32; // (T, nH·hd) attention output (o_proj input)
  h1: F32; // (T, d) after the attention residual
  u: F32; // (T, d) post_attention_layernorm output (FFN input)
  rstd2: F32; // (T)
  posted: boolean; // the ffn kind mapped this layer's output (TopK placement 'hidden')
}

export interface LmSaved {
  B: number;
  S: number;
  tokens: I32;
  layers: LayerSaved[];
  ffn: AnyDeviceFfnPass; // the feed-forward pass, with every layer's saved values
  hL: F32; // (T, d) final residual stream
  hn: F32; // (T, d) model.norm output
  rstdL: F32;
  probs: F32; // (T, V) softmax of the logits
  logits: F32; // (T, V)
  loss: F32; // (1) out.loss
  aux: Map<string, F32>; // 'loss_balance' → (1), averaged over producers
  auxCount: Map<string, number>;
}

/** A tensor of `rec` by full name, or an error naming it. */
function need(rec: Map<string, F32> | null, name: string, what: string): F32 {
  const t = rec?.get(name);
  if (!t) throw new Error(`lm: missing ${what} ${name}`);
  return t;
}

const layerName = (i: number, rest: string) => `model.layers.${i}.${rest}`;

/** What a feed-forward pass sees of layer i in forward (also lm-decode.ts). */
export function forwardCtx(
  sc: Scope,
  m: LmModel,
  dims: LmDims,
  aux: Map<string, F32>,
  producers: number,
  layer: number,
): DeviceFfnForwardCtx {
  return {
    layer,
    sc,
    dims,
    param: (name) => need(m.params, layerName(layer, name), 'parameter'),
    weight: (name) => weightOf(m, layerName(layer, name)),
    state: (name) => need(m.state, layerName(layer, name), 'state tensor'),
    aux: (name) => ({ sum: need(aux, `loss_${name}`, 'aux accumulator'), scale: 1 / producers }),
  };
}

/** What a feed-forward pass sees of layer i in backward. */
function backwardCtx(sc: Scope, m: LmModel, dims: LmDims, producers: number, layer: number): DeviceFfnBackwardCtx {
  const coefs: Record<string, number> =
    m.cfg.ffn.kind === 'smoe' ? m.cfg.ffn.aux : m.cfg.ffn.kind === 'monet' ? m.cfg.ffn.monet.aux : {};
  return {
    layer,
    sc,
    dims,
    param: (name) => need(m.params, layerName(layer, name), 'parameter'),
    state: (name) => need(m.state, layerName(layer, name), 'state tensor'),
    grad: (name) => need(m.grads, layerName(layer, name), 'gradient buffer for'),
    auxGrad: (name) => (coefs[name] ?? 0) / producers,
  };
}

export interface LmForwardOptions {
  /**
   * False for a forward that no backward follows (evaluation, inspection): each layer's temporaries live in a scope
   * of their own, released once the next layer has read the residual stream, except that a Monet router's layer
   * (its g1, g2 serve its whole group) is released when the next group starts — so a long batch holds one layer's
   * activations, not every layer's. The result then has no `layers` (and `ffn` refers to released tensors): the
   * logits, loss and aux values are what it is for. Default true.
   */
  keepLayers?: boolean;
}

export function lmForward(sc: Scope, m: LmModel, tokens: I32, B: number, S: number, o: LmForwardOptions = {}): LmSaved {
  const kn = sc.dev.kernels;
  const { cfg } = m;
  const { V, d, L, nH, nKV, hd, eps, theta } = cfg;
  const T = B * S;
  const dims: LmDims = { B, S, T };
  if (S > cfg.maxPos) throw new Error(`lm: sequence length ${S} exceeds max_position_embeddings ${cfg.maxPos}`);
  const P = (name: string): F32 => need(m.params, name, 'parameter');
  const W = (name: string): Weight => weightOf(m, name);
  const aux = new Map<string, F32>();
  const auxCount = new Map<string, number>();
  const producers = auxProducers(cfg.ffn, L);
  for (const n of lmAuxNames(cfg)) {
    aux.set(`loss_${n}`, sc.f32(1));
    auxCount.set(`loss_${n}`, producers);
  }
  const ffn = newDeviceFfnPass(cfg.ffn, L);
  const pass: DeviceFfnPass = ffn;
  let h = sc.f32(T * d);
  embedRows(kn, h, W('model.embed_tokens.weight'), tokens, T, d);
  const layers: LayerSaved[] = [];
  const keep = o.keepLayers !== false;
  const outer = sc;
  const groupSize = cfg.ffn.kind === 'monet' ? cfg.ffn.groups : 1;
  let routerScope: Scope | null = null; // (keepLayers false) the scope of the current group's router layer
  let carry: Scope | null = null; // (keepLayers false) the scope holding h, this layer's input
  for (let i = 0; i < L; i++) {
    const sc = keep ? outer : new Scope(outer.dev);
    if (!keep && i % groupSize === 0) {
      routerScope?.release();
      routerScope = sc;
    }
    const pre = `model.layers.${i}.`;
    // attention block
    const a = sc.f32(T * d),
      rstd1 = sc.f32(T);
    kn.rmsnorm(a, rstd1, h, P(`${pre}input_layernorm.weight`), { rows: T, d, eps });
    const q0 = sc.f32(T * nH * hd),
      k0 = sc.f32(T * nKV * hd),
      v = sc.f32(T * nKV * hd);
    linearForward(kn, q0, a, W(`${pre}self_attn.q_proj.weight`), null, T, d, nH * hd);
    linearForward(kn, k0, a, W(`${pre}self_attn.k_proj.weight`), null, T, d, nKV * hd);
    linearForward(kn, v, a, W(`${pre}self_attn.v_proj.weight`), null, T, d, nKV * hd);
    const q = sc.f32(T * nH * hd),
      k = sc.f32(T * nKV * hd);
    kn.rope(q, q0, { B, S, heads: nH, hd, theta });
    kn.rope(k, k0, { B, S, heads: nKV, hd, theta });
    const att = sc.f32(T * nH * hd),
      probs = sc.f32(B * nH * S * S);
    kn.attention(att, probs, q, k, v, { B, S, nH, nKV, hd });
    const h1 = sc.f32(T * d);
    linearForward(kn, h1, att, W(`${pre}self_attn.o_proj.weight`), null, T, nH * hd, d);
    kn.axpby(h1, h, { n: T * d, alpha: 1, beta: 1 });
    // feed-forward block: h2 = h1 + FFN(u), then the kind's post map (TopK placement 'hidden')
    const u = sc.f32(T * d),
      rstd2 = sc.f32(T);
    kn.rmsnorm(u, rstd2, h1, P(`${pre}post_attention_layernorm.weight`), { rows: T, d, eps });
    const f = sc.f32(T * d);
    const ctx = forwardCtx(sc, m, dims, aux, producers, i);
    pass.forward(ctx, u, f);
    m.hooks?.afterFfn?.(sc, i, { u, out: f, ffn });
    const next = keep || i === L - 1 ? outer : new Scope(outer.dev); // where this layer's output lives
    let h2 = next.f32(T * d);
    kn.copyBlock(h2, h1, { rows: 1, cols: T * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    kn.axpby(h2, f, { n: T * d, alpha: 1, beta: 1 });
    let posted = false;
    if (pass.postForward) {
      const y = next.f32(T * d);
      posted = pass.postForward(ctx, h2, y);
      if (posted) {
        h2 = y;
        m.hooks?.afterHidden?.(sc, i, h2);
      }
    }
    if (keep) layers.push({ h, a, rstd1, q, k, v, probs, att, h1, u, rstd2, posted });
    else {
      carry?.release();
      carry = next === outer ? null : next;
      if (sc !== routerScope) sc.release();
    }
    h = h2;
  }
  routerScope?.release();
  const hn = sc.f32(T * d),
    rstdL = sc.f32(T);
  kn.rmsnorm(hn, rstdL, h, P('model.norm.weight'), { rows: T, d, eps });
  const logits = sc.f32(T * V),
    probs = sc.f32(T * V),
    loss = sc.f32(1);
  linearForward(kn, logits, hn, W(cfg.tied ? 'model.embed_tokens.weight' : 'lm_head.weight'), null, T, d, V);
  if (S < 2) throw new Error(`lm: need at least 2 positions per sequence for next-token loss, found S = ${S}`);
  kn.crossEntropy(loss, probs, logits, tokens, { B, S, V, scale: 1 / (B * (S - 1)) });
  const coefs: Record<string, number> =
    cfg.ffn.kind === 'smoe' ? cfg.ffn.aux : cfg.ffn.kind === 'monet' ? cfg.ffn.monet.aux : {};
  for (const [n, t] of aux) kn.axpby(loss, t, { n: 1, alpha: coefs[n.slice('loss_'.length)], beta: 1 });
  return { B, S, tokens, layers, ffn, hL: h, hn, rstdL, probs, logits, loss, aux, auxCount };
}

/** Backward of out.loss, accumulating into m.grads. */
export function lmBackward(sc: Scope, m: LmModel, s: LmSaved): void {
  const kn = sc.dev.kernels;
  const { cfg } = m;
  const { V, d, L, nH, nKV, hd, theta } = cfg;
  const { B, S } = s;
  const T = B * S;
  const dims: LmDims = { B, S, T };
  const producers = auxProducers(cfg.ffn, L);
  const pass: DeviceFfnPass = s.ffn;
  const P = (n: string) => need(m.params, n, 'parameter');
  const G = (n: string): F32 => need(m.grads, n, 'gradient buffer for');
  const headName = cfg.tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const dlogits = sc.f32(T * V);
  kn.crossEntropyBackward(dlogits, s.probs, s.tokens, { B, S, V, scale: 1 / (B * (S - 1)) });
  const dhn = sc.f32(T * d);
  linearBackward(kn, dhn, G(headName), null, dlogits, s.hn, P(headName), T, d, V);
  let dh = sc.f32(T * d);
  kn.rmsnormBackward(dh, G('model.norm.weight'), dhn, s.hL, P('model.norm.weight'), s.rstdL, { rows: T, d });
  for (let i = L - 1; i >= 0; i--) {
    const pre = `model.layers.${i}.`;
    const ls = s.layers[i];
    const ctx = backwardCtx(sc, m, dims, producers, i);
    if (ls.posted && pass.postBackward) {
      const dz = sc.f32(T * d);
      pass.postBackward(ctx, dh, dz);
      dh = dz;
    }
    // h2 = h1 + FFN(u):  dh1 = dh2 + RMSNorm backward of dFFN input
    const du = sc.f32(T * d);
    pass.backward(ctx, ls.u, dh, du);
    const dh1 = sc.f32(T * d);
    kn.copyBlock(dh1, dh, { rows: 1, cols: T * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    const wPost = `${pre}post_attention_layernorm.weight`;
    kn.rmsnormBackward(dh1, G(wPost), du, ls.h1, P(wPost), ls.rstd2, { rows: T, d });
    // h1 = h + att·Woᵀ
    const datt = sc.f32(T * nH * hd);
    const wo = `${pre}self_attn.o_proj.weight`;
    linearBackward(kn, datt, G(wo), null, dh1, ls.att, P(wo), T, nH * hd, d);
    const dq = sc.f32(T * nH * hd),
      dk = sc.f32(T * nKV * hd),
      dv = sc.f32(T * nKV * hd);
    kn.attentionBackward(dq, dk, dv, datt, ls.q, ls.k, ls.v, ls.probs, { B, S, nH, nKV, hd });
    const dq0 = sc.f32(T * nH * hd),
      dk0 = sc.f32(T * nKV * hd);
    kn.ropeBackward(dq0, dq, { B, S, heads: nH, hd, theta });
    kn.ropeBackward(dk0, dk, { B, S, heads: nKV, hd, theta });
    const da = sc.f32(T * d);
    const wq = `${pre}self_attn.q_proj.weight`;
    const wk = `${pre}self_attn.k_proj.weight`;
    const wv = `${pre}self_attn.v_proj.weight`;
    linearBackward(kn, da, G(wq), null, dq0, ls.a, P(wq), T, d, nH * hd);
    linearBackward(kn, da, G(wk), null, dk0, ls.a, P(wk), T, d, nKV * hd);
    linearBackward(kn, da, G(wv), null, dv, ls.a, P(wv), T, d, nKV * hd);
    const dh0 = sc.f32(T * d);
    kn.copyBlock(dh0, dh1, { rows: 1, cols: T * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    const wIn = `${pre}input_layernorm.weight`;
    kn.rmsnormBackward(dh0, G(wIn), da, ls.h, P(wIn), ls.rstd1, { rows: T, d });
    dh = dh0;
  }
  kn.scatterAddRows(G('model.embed_tokens.weight'), dh, s.tokens, { rows: T, cols: d });
}
