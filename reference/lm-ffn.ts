// The contract between the decoder LM (lm.ts) and its feed-forward kinds.
//
// lm.ts owns everything every Llama layer shares (embedding, RMSNorms, attention, residuals, final norm, loss) and
// hands the feed-forward part of each layer to the driver of the model's `ffn` kind. A driver is one object with
// parse / paramSpecs / forward / backward; adding a kind (Monet, PEER, …) means writing a driver and listing it in
// FFN_DRIVERS in lm.ts. The driver sees one layer at a time through FfnLayerCtx, which also carries what some kinds
// need beyond their own layer: state (BatchNorm running stats and their `next.*` values), a per-pass `shared` map
// for values computed in one layer and reused by later ones (Monet's group router), aux losses, and routing margins.
//
// Dimension legend:
//   B sequences, S positions, T = B·S tokens, d model dim, V vocabulary, L layers

import type { Config, ParamSpec, Params } from './common.ts';

export type LmMode = 'train' | 'eval';

/** The model-wide part of an LM config (everything that is not the feed-forward's own keys). */
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
  ffn: string; // feed-forward kind, a key of FFN_DRIVERS
  mode: LmMode; // train: BatchNorms use batch statistics and update running stats; eval: running stats
  aux: Record<string, number>; // aux-loss coefficients by name (e.g. balance, z), from config.aux
}

export interface LmDims {
  B: number;
  S: number;
  T: number; // B·S
}

/** A non-trained state tensor (BatchNorm running statistics) and its initial value. */
export interface StateSpec {
  name: string;
  shape: number[];
  init: 'zeros' | 'ones';
}

/** What a driver sees of one layer during one forward or backward pass. */
export interface FfnLayerCtx {
  readonly layer: number; // i, 0-based
  readonly cfg: LmConfig;
  readonly dims: LmDims;
  /** This layer's parameters under `model.layers.<i>.<prefix>`, keyed without that prefix (e.g. `up_proj.weight`). */
  params(prefix: string): Params;
  /** Their gradient buffers (same keys; backward accumulates into them). Only valid in backward. */
  grads(prefix: string): Params;
  /** This layer's state under `state.model.layers.<i>.<prefix>` (names without that prefix and without `state.`). */
  state(prefix: string): Params;
  /** Record the state after this step: `next.model.layers.<i>.<name>`. */
  setNext(name: string, value: Float64Array): void;
  /** Values that live for one pass and cross layers (forward writes, backward reads and adds; see Monet routers). */
  readonly shared: Map<string, unknown>;
  /** Forward: report this layer's raw aux loss `name` (e.g. 'balance' → out.loss_balance). */
  addAux(name: string, value: number): void;
  /** Backward: ∂(out.loss)/∂(this layer's raw aux `name`) = coefficient / number of producers × upstream. */
  auxGrad(name: string): number;
  /** Forward: report the smallest relative routing margin seen in this layer (see margins.ts). */
  addMargin(margin: number): void;
}

/** One feed-forward kind of the LM. `C` is the driver's parsed config. */
export interface FfnDriver<C = unknown, S = unknown> {
  /** Parse and validate this kind's own keys of the model config; errors name the key and `where`. */
  parse(raw: Config, cfg: LmConfig, where: string): C;
  /** Aux losses this kind produces (keys of config.aux), e.g. ['balance', 'z']; [] for none. */
  auxNames(c: C): string[];
  /** Parameters of layer i, named relative to `model.layers.<i>.` (e.g. `mlp.up_proj.weight`). */
  paramSpecs(c: C, cfg: LmConfig, layer: number): ParamSpec[];
  /** State tensors of layer i, relative to `model.layers.<i>.` (stored as `state.model.layers.<i>.<name>`). */
  stateSpecs(c: C, cfg: LmConfig, layer: number): StateSpec[];
  /** out (T, d) = FFN_i(u), u (T, d) = post_attention_layernorm output. Returns what backward needs. */
  forward(c: C, ctx: FfnLayerCtx, u: Float64Array, out: Float64Array): S;
  /** du (T, d) += (∂out/∂u)ᵀ dout; parameter gradients accumulated through ctx.grads. */
  backward(c: C, ctx: FfnLayerCtx, saved: S, u: Float64Array, dout: Float64Array, du: Float64Array): void;
  /**
   * Optional map applied to the layer's OUTPUT (the residual stream after the block), e.g. TopK `placement: hidden`.
   * Return null from postForward for the identity.
   */
  postForward?(c: C, ctx: FfnLayerCtx, inp: Float64Array, out: Float64Array): unknown | null;
  postBackward?(c: C, ctx: FfnLayerCtx, saved: unknown, dout: Float64Array, dinp: Float64Array): void;
  /** Tiny configurations of this kind (its own keys only) for the demo and the LM tests, with a label each. */
  examples(): Array<{ label: string; config: Config }>;
}
