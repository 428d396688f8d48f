// The feed-forward kinds of the device LM (lm.ts), float32 on a Device — the twins of reference/lm-ffn.ts,
// lm-peer.ts and lm-monet.ts, on the same contract (FfnPassOf): one pass per forward, created from the model's
// config, runs layer i's FFN when asked and keeps what that layer saved for backward. A pass sees a layer through a
// typed context: its tensors by name (relative to `model.layers.<i>.`), the aux-loss accumulators, and in backward
// the gradient buffers and each aux loss's upstream gradient.
//
// Tensor names and shapes come from the kind declarations (src/kinds/): each layer's parameter table maps the device
// layer's roles (query, subKeys, u1, …) to checkpoint names.
//
// Dimension legend: T tokens, d model dim, F hidden units, E experts (SMoE) or experts per side (Monet), H heads,
// m moe_dim, L layers, G moe_groups

import type { DenseFfnConfig } from '../../reference/dense-ffn.ts';
import type { FfnConfig, FfnPassOf, LmDims, TopkLmConfig } from '../../reference/lm-ffn.ts';
import type { MonetDecompose, MonetLayerConfig } from '../../reference/monet-layer.ts';
import type { PeerConfig as RefPeerConfig } from '../../reference/peer.ts';
import type { SmoeConfig } from '../../reference/smoe.ts';
import type { Scope } from '../backend/device.ts';
import type { F32 } from '../backend/kernels.ts';
import type { Weight } from './common.ts';
import { denseFfnTable } from '../kinds/dense-ffn.ts';
import { monetHdTable, monetVdTable } from '../kinds/monet.ts';
import { peerTable } from '../kinds/peer.ts';
import { smoeExpertTable } from '../kinds/smoe.ts';
import type { ParamSpec } from '../kinds/tensors.ts';
import { topkFfnTable } from '../kinds/topk.ts';
import { denseFfnBackward, denseFfnForward, type DenseFfnSaved } from './dense-ffn.ts';
import { monetHdBackward, monetHdForward, type MonetHdSaved, type MonetHdWeights } from './monet-hd.ts';
import {
  deviceRouterConfig,
  monetAuxBackward,
  monetAuxForward,
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterConfig,
  type MonetRouterSaved,
} from './monet-router.ts';
import { monetVdBackward, monetVdForward, type MonetVdSaved, type MonetVdWeights } from './monet-vd.ts';
import { devicePeerConfig, peerBackward, peerForward, type PeerConfig, type PeerSaved } from './peer.ts';
import { smoeBackward, smoeForward, type SmoeSaved, type SmoeWeights } from './smoe.ts';
import {
  topkBackward,
  topkFfnBackward,
  topkFfnForward,
  topkForward,
  type TopkFfnSaved,
  type TopkSaved,
} from './topk.ts';

/** What a pass sees of layer i (names relative to `model.layers.<i>.`). */
export interface DeviceFfnCtx {
  readonly layer: number;
  readonly sc: Scope;
  readonly dims: LmDims;
  param(name: string): F32;
  /** BatchNorm running statistics: read in eval mode, updated in place in train mode. */
  state(name: string): F32;
}

export interface DeviceFfnForwardCtx extends DeviceFfnCtx {
  /** A weight matrix as the forward reads it: float32, or bfloat16 kept packed (a downloaded 16-bit checkpoint). */
  weight(name: string): Weight;
  /** Aux loss `name`'s 1-element accumulator and the scale each producer adds its value with (1 / producers). */
  aux(name: string): { sum: F32; scale: number };
}

export interface DeviceFfnBackwardCtx extends DeviceFfnCtx {
  /** The gradient buffer of a parameter (backward accumulates into it). */
  grad(name: string): F32;
  /** ∂(out.loss)/∂(one producer's raw aux `name`) = coefficient / producers. */
  auxGrad(name: string): number;
}

export type DeviceFfnPass = FfnPassOf<F32, DeviceFfnForwardCtx, DeviceFfnBackwardCtx>;

/** A parameter table's tensors by role: required roles F32, optional (null spec) roles F32 | null. */
type Bound<T> = { [K in keyof T]: T[K] extends ParamSpec ? F32 : F32 | null };

function bind<T extends Record<string, ParamSpec | null>>(table: T, get: (name: string) => F32): Bound<T> {
  return Object.fromEntries(Object.entries(table).map(([k, s]) => [k, s ? get(s.name) : null])) as Bound<T>;
}

/**
 * A forward's binding of a table: its weight matrices (the `weight()` entries of src/kinds/tensors.ts) through
 * `weight`, which may hand out bfloat16 kept packed, everything else (biases, scales) through `param` as float32.
 * The layer's forward weight type (e.g. MonetVdWeights<Weight>) says which roles are matrices.
 */
function bindForward<W, T extends Record<string, ParamSpec>>(
  table: T,
  weight: (name: string) => Weight,
  param: (name: string) => F32,
): W {
  return Object.fromEntries(
    Object.entries(table).map(([k, s]) => [k, s.init === 'normal' ? weight(s.name) : param(s.name)]),
  ) as W;
}

// ---------------------------------------------------------------------------------------------------------------

/** A dense MLP under `<prefix>` (dense models; the other layers of peer models; the ReLU MLP of topk models). */
function denseLayer(c: DenseFfnConfig, prefix: string) {
  const table = denseFfnTable(c);
  return {
    forward(ctx: DeviceFfnForwardCtx, u: F32, out: F32): DenseFfnSaved {
      const w = bind(table, (n) => ctx.param(prefix + n));
      return denseFfnForward(ctx.sc, out, u, w, c, ctx.dims.T);
    },
    backward(ctx: DeviceFfnBackwardCtx, saved: DenseFfnSaved, u: F32, dout: F32, du: F32): void {
      const w = bind(table, (n) => ctx.param(prefix + n));
      const g = bind(table, (n) => ctx.grad(prefix + n));
      denseFfnBackward(ctx.sc, du, g, dout, u, w, saved, c, ctx.dims.T);
    },
  };
}

export class DenseDevicePass implements DeviceFfnPass {
  readonly kind = 'dense';
  private readonly mlp;
  readonly saved: DenseFfnSaved[] = []; // by layer
  constructor(c: DenseFfnConfig) {
    this.mlp = denseLayer(c, 'mlp.');
  }
  forward(ctx: DeviceFfnForwardCtx, u: F32, out: F32): void {
    this.saved[ctx.layer] = this.mlp.forward(ctx, u, out);
  }
  backward(ctx: DeviceFfnBackwardCtx, u: F32, dout: F32, du: F32): void {
    this.mlp.backward(ctx, this.saved[ctx.layer], u, dout, du);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// smoe: Mixtral stores one tensor per expert; the grouped kernels read them stacked (E, ·, ·). Stacking is a device
// copy; backward accumulates into stacked buffers, then adds each expert's slice into its own gradient.

export class SmoeDevicePass implements DeviceFfnPass {
  readonly kind = 'smoe';
  readonly saved: Array<{ s: SmoeSaved; w: SmoeWeights }> = []; // by layer
  constructor(readonly c: SmoeConfig) {}

  /** The experts' role-r weights (or gradients) stacked into one (E, ·, ·) tensor. */
  private stack(ctx: DeviceFfnCtx, role: 'w1' | 'w2' | 'w3', get: (name: string) => F32): F32 {
    const { E, d, F } = this.c;
    const per = d * F; // every role is F·d numbers
    const out = ctx.sc.f32(E * per);
    for (let e = 0; e < E; e++) {
      const spec = smoeExpertTable(this.c, e)[role]!;
      ctx.sc.dev.kernels.copyBlock(out, get(spec.name), {
        rows: 1,
        cols: per,
        dstLd: per,
        srcLd: per,
        dstOffset: e * per,
        srcOffset: 0,
        accumulate: false,
      });
    }
    return out;
  }

  forward(ctx: DeviceFfnForwardCtx, u: F32, out: F32): void {
    const get = (n: string) => ctx.param(`block_sparse_moe.${n}`);
    const w: SmoeWeights = {
      gate: get('gate.weight'),
      w1: this.stack(ctx, 'w1', get),
      w2: this.stack(ctx, 'w2', get),
      w3: this.c.activation === 'swiglu' ? this.stack(ctx, 'w3', get) : null,
    };
    const balance = ctx.aux('balance');
    const z = ctx.aux('z');
    const s = smoeForward(ctx.sc, out, { balance: balance.sum, z: z.sum }, u, w, this.c, ctx.dims.T, balance.scale);
    this.saved[ctx.layer] = { s, w };
  }

  backward(ctx: DeviceFfnBackwardCtx, u: F32, dout: F32, du: F32): void {
    const { E, d, F } = this.c;
    const sc = ctx.sc;
    const { s, w } = this.saved[ctx.layer];
    // stacked gradient buffers start at zero; their per-expert slices are added to the model's buffers after
    const gw1 = sc.f32(E * F * d);
    const gw2 = sc.f32(E * d * F);
    const gw3 = this.c.activation === 'swiglu' ? sc.f32(E * F * d) : null;
    const g = { gate: ctx.grad('block_sparse_moe.gate.weight'), w1: gw1, w2: gw2, w3: gw3 };
    smoeBackward(sc, du, g, dout, u, w, s, this.c, ctx.dims.T, ctx.auxGrad('balance'), ctx.auxGrad('z'));
    const per = F * d;
    for (const [role, buf] of [
      ['w1', gw1],
      ['w2', gw2],
      ['w3', gw3],
    ] as const) {
      if (!buf) continue;
      for (let e = 0; e < E; e++) {
        const spec = smoeExpertTable(this.c, e)[role]!;
        sc.dev.kernels.copyBlock(ctx.grad(`block_sparse_moe.${spec.name}`), buf, {
          rows: 1,
          cols: per,
          dstLd: per,
          srcLd: per,
          dstOffset: 0,
          srcOffset: e * per,
          accumulate: true,
        });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// topk: ReLU MLPs; TopK on the hidden units (placement ffn) or on the block's output (placement hidden) of layers
// i < L − n_last_non_topk.

export class TopkDevicePass implements DeviceFfnPass {
  readonly kind = 'topk';
  private readonly relu;
  readonly saved: Array<{ topk: true; s: TopkFfnSaved } | { topk: false; s: DenseFfnSaved }> = []; // by layer
  private readonly post: TopkSaved[] = [];
  constructor(
    readonly c: TopkLmConfig,
    readonly L: number,
  ) {
    this.relu = denseLayer({ d: c.d, F: c.F, activation: 'relu' }, 'mlp.');
  }
  isTopkLayer(i: number): boolean {
    return i < this.L - this.c.nLast;
  }
  forward(ctx: DeviceFfnForwardCtx, u: F32, out: F32): void {
    if (this.c.placement === 'ffn' && this.isTopkLayer(ctx.layer)) {
      const w = bind(topkFfnTable(this.c), (n) => ctx.param(`mlp.${n}`));
      this.saved[ctx.layer] = { topk: true, s: topkFfnForward(ctx.sc, out, u, w, this.c, ctx.dims.T) };
    } else {
      this.saved[ctx.layer] = { topk: false, s: this.relu.forward(ctx, u, out) };
    }
  }
  backward(ctx: DeviceFfnBackwardCtx, u: F32, dout: F32, du: F32): void {
    const s = this.saved[ctx.layer];
    if (!s.topk) {
      this.relu.backward(ctx, s.s, u, dout, du);
      return;
    }
    const table = topkFfnTable(this.c);
    const w = bind(table, (n) => ctx.param(`mlp.${n}`));
    const g = bind(table, (n) => ctx.grad(`mlp.${n}`));
    topkFfnBackward(ctx.sc, du, g, dout, u, w, s.s, this.c, ctx.dims.T);
  }
  postForward(ctx: DeviceFfnForwardCtx, inp: F32, out: F32): boolean {
    if (this.c.placement !== 'hidden' || !this.isTopkLayer(ctx.layer)) return false;
    this.post[ctx.layer] = topkForward(ctx.sc, out, inp, this.c, ctx.dims.T, this.c.d);
    return true;
  }
  postBackward(ctx: DeviceFfnBackwardCtx, dout: F32, dinp: F32): void {
    topkBackward(ctx.sc, dinp, dout, this.post[ctx.layer], this.c, ctx.dims.T, this.c.d);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// peer: PEER on peer_layers, the dense MLP (same activation) elsewhere.

export class PeerDevicePass implements DeviceFfnPass {
  readonly kind = 'peer';
  readonly c: PeerConfig;
  private readonly dense;
  readonly saved: Array<{ peer: true; s: PeerSaved } | { peer: false; s: DenseFfnSaved }> = []; // by layer
  constructor(
    c: RefPeerConfig,
    readonly layers: readonly number[],
    dense: DenseFfnConfig | null,
  ) {
    this.c = devicePeerConfig(c);
    this.dense = dense ? denseLayer(dense, 'mlp.') : null;
  }
  private state(ctx: DeviceFfnCtx) {
    return {
      runningMean: ctx.state('mlp.query_bn.running_mean'),
      runningVar: ctx.state('mlp.query_bn.running_var'),
    };
  }
  forward(ctx: DeviceFfnForwardCtx, u: F32, out: F32): void {
    if (!this.layers.includes(ctx.layer)) {
      this.saved[ctx.layer] = { peer: false, s: this.dense!.forward(ctx, u, out) };
      return;
    }
    const w = bind(peerTable(this.c), (n) => ctx.param(`mlp.${n}`));
    this.saved[ctx.layer] = { peer: true, s: peerForward(ctx.sc, out, u, w, this.state(ctx), this.c, ctx.dims.T) };
  }
  backward(ctx: DeviceFfnBackwardCtx, u: F32, dout: F32, du: F32): void {
    const s = this.saved[ctx.layer];
    if (!s.peer) {
      this.dense!.backward(ctx, s.s, u, dout, du);
      return;
    }
    const table = peerTable(this.c);
    const w = bind(table, (n) => ctx.param(`mlp.${n}`));
    const g = bind(table, (n) => ctx.grad(`mlp.${n}`));
    peerBackward(ctx.sc, du, g, dout, u, w, s.s, this.c, ctx.dims.T);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// monet: a router on every G-th layer, reused by the group; every layer of the group adds into the router's
// dg1/dg2 in backward; the group's first layer (reached last going backward) adds the aux gradients and runs the
// router backward into its own u gradient.

export interface DeviceRouterEntry {
  saved: MonetRouterSaved;
  dg1: F32; // (T, H, E) accumulated by every layer of the group in backward
  dg2: F32;
}

export class MonetDevicePass implements DeviceFfnPass {
  readonly kind = 'monet';
  private readonly r: MonetRouterConfig;
  private readonly routers: DeviceRouterEntry[] = []; // by group
  /**
   * By layer: what the forward saved, and the weights it read (`w`: handles only; a float32 tensor widened from
   * 16 bits stays valid until 16 more are widened, src/layers/packed-weights.ts — long enough for a hook that runs
   * right after the layer, as inspection's removal of experts does).
   */
  readonly saved: Array<
    { hd: true; s: MonetHdSaved; w: MonetHdWeights<Weight> } | { hd: false; s: MonetVdSaved; w: MonetVdWeights<Weight> }
  > = [];
  constructor(
    readonly c: MonetLayerConfig,
    readonly groups: number,
    readonly decompose: MonetDecompose,
  ) {
    this.r = deviceRouterConfig(c);
  }
  isRouterLayer(i: number): boolean {
    return i % this.groups === 0;
  }
  /** The router entry layer i uses in this pass (its group's). */
  router(i: number): DeviceRouterEntry {
    return this.routers[Math.floor(i / this.groups)];
  }
  private dims(T: number) {
    return { T, d: this.c.d, H: this.c.H, E: this.c.E, m: this.c.m };
  }
  forward(ctx: DeviceFfnForwardCtx, u: F32, out: F32): void {
    const { sc, layer } = ctx;
    const dims = this.dims(ctx.dims.T);
    const { T, H, E } = dims;
    if (this.isRouterLayer(layer)) {
      const st = (n: string) => ctx.state(`router.${n}`);
      const state = {
        mean1: st('norm1.running_mean'),
        var1: st('norm1.running_var'),
        mean2: st('norm2.running_mean'),
        var2: st('norm2.running_var'),
      };
      const w = { w1: ctx.weight('router.w1.weight'), w2: ctx.weight('router.w2.weight') };
      const saved = monetRouterForward(sc, u, w, state, this.r, T);
      const unif = ctx.aux('unif');
      monetAuxForward(sc, unif.sum, ctx.aux('amb').sum, saved, H, E, T, this.c.unifEps, unif.scale);
      this.routers[layer / this.groups] = { saved, dg1: sc.f32(T * H * E), dg2: sc.f32(T * H * E) };
    }
    const { g1, g2 } = this.router(layer).saved;
    const weight = (n: string) => ctx.weight(`moe.${n}`);
    const param = (n: string) => ctx.param(`moe.${n}`);
    if (this.decompose === 'horizontal') {
      const w = bindForward<MonetHdWeights<Weight>, ReturnType<typeof monetHdTable>>(
        monetHdTable(this.c),
        weight,
        param,
      );
      this.saved[layer] = { hd: true, s: monetHdForward(sc, out, u, g1, g2, w, dims), w };
    } else {
      const w = bindForward<MonetVdWeights<Weight>, ReturnType<typeof monetVdTable>>(
        monetVdTable(this.c),
        weight,
        param,
      );
      this.saved[layer] = { hd: false, s: monetVdForward(sc, out, u, g1, g2, w, dims), w };
    }
  }
  backward(ctx: DeviceFfnBackwardCtx, u: F32, dout: F32, du: F32): void {
    const { sc, layer } = ctx;
    const dims = this.dims(ctx.dims.T);
    const r = this.router(layer);
    const { g1, g2 } = r.saved;
    const s = this.saved[layer];
    if (s.hd) {
      const table = monetHdTable(this.c);
      const w = bind(table, (n) => ctx.param(`moe.${n}`));
      const g = bind(table, (n) => ctx.grad(`moe.${n}`));
      monetHdBackward(sc, du, g, r.dg1, r.dg2, dout, u, g1, g2, w, s.s, dims);
    } else {
      const table = monetVdTable(this.c);
      const w = bind(table, (n) => ctx.param(`moe.${n}`));
      const g = bind(table, (n) => ctx.grad(`moe.${n}`));
      monetVdBackward(sc, du, g, r.dg1, r.dg2, dout, u, g1, g2, w, s.s, dims);
    }
    if (!this.isRouterLayer(layer)) return;
    // the group's first layer: its router's gradients are complete; add the aux terms and run the router
    const { T, H, E } = dims;
    const coefUnif = ctx.auxGrad('unif');
    const coefAmb = ctx.auxGrad('amb');
    monetAuxBackward(sc, r.dg1, r.dg2, r.saved, H, E, T, this.c.unifEps, coefUnif, coefAmb);
    const w = { w1: ctx.param('router.w1.weight'), w2: ctx.param('router.w2.weight') };
    const g = { w1: ctx.grad('router.w1.weight'), w2: ctx.grad('router.w2.weight') };
    monetRouterBackward(sc, du, g, r.dg1, r.dg2, u, w, r.saved, this.r, T);
  }
}

export type AnyDeviceFfnPass = DenseDevicePass | SmoeDevicePass | TopkDevicePass | PeerDevicePass | MonetDevicePass;

/** A fresh pass of the model's feed-forward kind. */
export function newDeviceFfnPass(ffn: FfnConfig, L: number): AnyDeviceFfnPass {
  switch (ffn.kind) {
    case 'dense':
      return new DenseDevicePass(ffn.mlp);
    case 'smoe':
      return new SmoeDevicePass(ffn.smoe);
    case 'topk':
      return new TopkDevicePass(ffn.topk, L);
    case 'peer':
      return new PeerDevicePass(ffn.peer, ffn.layers, ffn.dense);
    case 'monet':
      return new MonetDevicePass(ffn.monet, ffn.groups, ffn.decompose);
  }
}

/** How many producers average into each aux loss: every layer (SMoE) or every router (Monet). */
export function auxProducers(ffn: FfnConfig, L: number): number {
  return ffn.kind === 'smoe' ? L : ffn.kind === 'monet' ? Math.ceil(L / ffn.groups) : 0;
}
