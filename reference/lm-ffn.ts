// The contract between the decoder LM (lm.ts) and its feed-forward kinds, and the three simple kinds.
//
// lm.ts owns what every Llama layer shares (embedding, RMSNorms, attention, residuals, final norm, loss) and hands
// the feed-forward part of each layer to a *pass* of the model's ffn kind: an object created for one forward (and
// its backward) that runs layer i's FFN when asked and keeps what that layer saved for backward. The pass sees a
// layer through a typed context: that layer's parameters, state and gradients by prefix, where to put the state
// after the step (`next.*`), and how to report an aux loss and read back its gradient.
//
// The same contract (FfnPassOf) serves the float32 device LM (src/layers/lm.ts) with device tensors and contexts.
//
// Dimension legend:
//   B sequences, S positions, T = B·S tokens, d model dim, F hidden units, L layers

import type { Params } from './common.ts';
import {
  denseFfnBackward,
  denseFfnForward,
  denseFfnGrads,
  denseFfnWeights,
  type DenseFfnConfig,
  type DenseFfnSaved,
} from './dense-ffn.ts';
import type { MonetDecompose, MonetLayerConfig } from './monet-layer.ts';
import type { PeerConfig } from './peer.ts';
import { smoeBackward, smoeForward, type SmoeConfig, type SmoeSaved } from './smoe.ts';
import { topkFfnBackward, topkFfnForward, type TopkFfnConfig, type TopkFfnSaved } from './topk-ffn.ts';
import { topkBackward, topkForward, type TopkSaved } from './topk.ts';

export type LmMode = 'train' | 'eval';

export interface LmDims {
  B: number;
  S: number;
  T: number; // B·S
}

/**
 * One pass of a feed-forward kind over the layers of one forward and its backward: the contract of both LMs
 * (A: the array type; the contexts say what a layer sees).
 */
export interface FfnPassOf<A, FwdCtx, BwdCtx> {
  /** out (T, d) = FFN_i(u), u (T, d) the layer's post_attention_layernorm output. Keeps what backward needs. */
  forward(ctx: FwdCtx, u: A, out: A): void;
  /** du (T, d) += (∂out/∂u)ᵀ dout; parameter gradients accumulate through ctx. Called from the last layer down. */
  backward(ctx: BwdCtx, u: A, dout: A, du: A): void;
  /**
   * A map of the layer's OUTPUT (the residual stream after the block; TopK `placement: hidden`): writes `out` and
   * returns true, or returns false for the identity.
   */
  postForward?(ctx: FwdCtx, inp: A, out: A): boolean;
  /** dinp (T, d) += the map's backward of dout (only for layers whose postForward returned true). */
  postBackward?(ctx: BwdCtx, dout: A, dinp: A): void;
}

/** What a pass sees of layer i during forward. Names are relative to `model.layers.<i>.`. */
export interface FfnForwardCtx {
  readonly layer: number;
  readonly dims: LmDims;
  /** Parameters under `model.layers.<i>.<prefix>`, keyed without that prefix (e.g. `up_proj.weight`). */
  params(prefix: string): Params;
  /** State under `model.layers.<i>.<prefix>` (BatchNorm running statistics), keyed without the prefix. */
  state(prefix: string): Params;
  /** Record the state after this step: `next.model.layers.<i>.<name>`. */
  setNext(name: string, value: Float64Array): void;
  /** Report this layer's raw aux loss `name` (e.g. 'balance' → out.loss_balance, averaged over its producers). */
  addAux(name: string, value: number): void;
}

/** What a pass sees of layer i during backward. */
export interface FfnBackwardCtx {
  readonly layer: number;
  readonly dims: LmDims;
  params(prefix: string): Params;
  /** Gradient buffers, same keys as params (backward accumulates into them). */
  grads(prefix: string): Params;
  /** ∂(out.loss)/∂(this layer's raw aux `name`) = coefficient / number of producers × upstream. */
  auxGrad(name: string): number;
}

/** The reference LM's feed-forward pass. */
export type FfnPass = FfnPassOf<Float64Array, FfnForwardCtx, FfnBackwardCtx>;

/** TopK LM: the TopK FFN's keys plus where TopK applies and how many final layers stay dense. */
export interface TopkLmConfig extends TopkFfnConfig {
  placement: 'ffn' | 'hidden'; // topk_placement
  nLast: number; // n_last_non_topk
}

/** The feed-forward part of an LM config, by `ffn` kind (src/kinds/lm.ts reads it from a config). */
export type FfnConfig =
  | { kind: 'dense'; mlp: DenseFfnConfig }
  | { kind: 'smoe'; smoe: SmoeConfig; aux: { balance: number; z: number } }
  | { kind: 'topk'; topk: TopkLmConfig }
  | { kind: 'peer'; peer: PeerConfig; layers: number[]; dense: DenseFfnConfig | null }
  | { kind: 'monet'; monet: MonetLayerConfig; groups: number; decompose: MonetDecompose };

export type FfnKind = FfnConfig['kind'];

/** Aux-loss coefficients of a feed-forward kind, by name, in the order the losses are reported. */
export function ffnAuxCoefs(ffn: FfnConfig): Record<string, number> {
  switch (ffn.kind) {
    case 'smoe':
      return { balance: ffn.aux.balance, z: ffn.aux.z };
    case 'monet':
      return { unif: ffn.monet.aux.unif, amb: ffn.monet.aux.amb };
    default:
      return {};
  }
}

// ---------------------------------------------------------------------------------------------------------------
// dense: the Llama MLP in every layer, `model.layers.<i>.mlp.{gate_proj,up_proj,down_proj}.weight` (dense-ffn.ts).

export class DensePass implements FfnPass {
  readonly kind = 'dense';
  readonly saved: DenseFfnSaved[] = []; // by layer
  constructor(readonly c: DenseFfnConfig) {}
  forward(ctx: FfnForwardCtx, u: Float64Array, out: Float64Array): void {
    const w = denseFfnWeights(this.c, ctx.params('mlp.'));
    this.saved[ctx.layer] = denseFfnForward(out, u, w, this.c, ctx.dims.T);
  }
  backward(ctx: FfnBackwardCtx, u: Float64Array, dout: Float64Array, du: Float64Array): void {
    const w = denseFfnWeights(this.c, ctx.params('mlp.'));
    const g = denseFfnGrads(ctx.grads('mlp.'));
    denseFfnBackward(du, g, dout, u, w, this.saved[ctx.layer], this.c, ctx.dims.T);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// smoe: in every layer (smoe.ts), Mixtral names `model.layers.<i>.block_sparse_moe.{gate,experts.<e>.w1/w2/w3}`.
// Each layer reports loss_balance and loss_z; the LM averages each over the layers.

export class SmoePass implements FfnPass {
  readonly kind = 'smoe';
  readonly saved: SmoeSaved[] = []; // by layer
  constructor(readonly c: SmoeConfig) {}
  forward(ctx: FfnForwardCtx, u: Float64Array, out: Float64Array): void {
    const s = smoeForward(out, u, ctx.params('block_sparse_moe.'), this.c, ctx.dims.T);
    ctx.addAux('balance', s.lossBalance);
    ctx.addAux('z', s.lossZ);
    this.saved[ctx.layer] = s;
  }
  backward(ctx: FfnBackwardCtx, u: Float64Array, dout: Float64Array, du: Float64Array): void {
    const p = ctx.params('block_sparse_moe.');
    const g = ctx.grads('block_sparse_moe.');
    const aux = { balance: ctx.auxGrad('balance'), z: ctx.auxGrad('z') };
    smoeBackward(du, g, dout, u, p, this.saved[ctx.layer], this.c, ctx.dims.T, aux);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// topk (our reading of the TopK LM paper, docs/spec.md): every MLP is up_proj → ReLU → down_proj
// (`mlp.up_proj/down_proj.weight`). For layers i < L − n_last_non_topk the TopK activation (topk.ts) is applied:
//   topk_placement 'ffn':    to the MLP's hidden units (topk-ffn.ts), k of intermediate_size;
//   topk_placement 'hidden': to the layer's output residual stream (the post map), k of hidden_size.
// The last n_last_non_topk layers stay dense (plain ReLU MLP, no TopK).

/** One TopK-LM layer's saved values: the TopK FFN's or the plain ReLU MLP's. */
export type TopkLayerSaved = { topk: true; s: TopkFfnSaved } | { topk: false; s: DenseFfnSaved };

export class TopkPass implements FfnPass {
  readonly kind = 'topk';
  readonly saved: TopkLayerSaved[] = []; // by layer
  /** placement 'hidden': each TopK layer's post-map input (T, d) and mask. */
  readonly post: Array<{ inp: Float64Array; topk: TopkSaved }> = [];
  private readonly relu: DenseFfnConfig;
  constructor(
    readonly c: TopkLmConfig,
    readonly L: number,
  ) {
    this.relu = { d: c.d, F: c.F, activation: 'relu' };
  }
  /** Whether layer i applies TopK (the last n_last_non_topk layers do not). */
  isTopkLayer(i: number): boolean {
    return i < this.L - this.c.nLast;
  }
  forward(ctx: FfnForwardCtx, u: Float64Array, out: Float64Array): void {
    const p = ctx.params('mlp.');
    const T = ctx.dims.T;
    if (this.c.placement === 'ffn' && this.isTopkLayer(ctx.layer))
      this.saved[ctx.layer] = { topk: true, s: topkFfnForward(out, u, p, this.c, T) };
    else
      this.saved[ctx.layer] = { topk: false, s: denseFfnForward(out, u, denseFfnWeights(this.relu, p), this.relu, T) };
  }
  backward(ctx: FfnBackwardCtx, u: Float64Array, dout: Float64Array, du: Float64Array): void {
    const p = ctx.params('mlp.');
    const g = ctx.grads('mlp.');
    const T = ctx.dims.T;
    const s = this.saved[ctx.layer];
    if (s.topk) topkFfnBackward(du, g, dout, u, p, s.s, this.c, T);
    else denseFfnBackward(du, denseFfnGrads(g), dout, u, denseFfnWeights(this.relu, p), s.s, this.relu, T);
  }
  postForward(ctx: FfnForwardCtx, inp: Float64Array, out: Float64Array): boolean {
    if (this.c.placement !== 'hidden' || !this.isTopkLayer(ctx.layer)) return false;
    this.post[ctx.layer] = { inp, topk: topkForward(out, inp, ctx.dims.T, this.c.d, this.c) };
    return true;
  }
  postBackward(ctx: FfnBackwardCtx, dout: Float64Array, dinp: Float64Array): void {
    const s = this.post[ctx.layer];
    topkBackward(dinp, dout, s.inp, s.topk, ctx.dims.T, this.c.d, this.c);
  }
}
