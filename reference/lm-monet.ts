// The `monet` feed-forward kind of the reference LM (lm.ts): Monet experts in every layer, routers shared by groups
// of layers (docs/spec.md, Monet: router groups).
//
// Dimension legend:   T tokens   d model dim   H expert heads   E experts per side = √N   m moe_dim   G moe_groups
//
// Checkpoint names (Hugging Face Monet layout), for layer i:
//   model.layers.<i>.moe.<MoHDE or MoVDE names>                          every layer
//   model.layers.<i>.router.w1.weight, .w2.weight  (H·E, d)              only where i % G == 0
//   state model.layers.<i>.router.norm{1,2}.running_{mean,var}  (H)      with the router
//
// Router groups. A router exists only on layers i with i % G == 0. It routes that layer's FFN input u_i, and the
// next G − 1 layers reuse its (g1, g2) verbatim although their own hidden states differ (the official
// `previous_router_probs`). Backward therefore sums dg1, dg2 over all layers of the group before the one router
// backward, and the router's dx goes only into the FFN input of the group's first layer. lm.ts walks the layers from
// last to first, so every later layer of a group has added its dg by the time the router layer is reached.
//
// Aux losses are computed once per router (on its g1, g2) and reported through ctx.addAux, so lm.ts averages them
// over ROUTERS, not layers (our choice: the paper does not say whether it sums or averages; docs/spec.md).

import type { FfnBackwardCtx, FfnForwardCtx, FfnPass } from './lm-ffn.ts';
import { monetAuxBackward, monetAuxForward, type MonetAuxSaved } from './monet-aux.ts';
import { MONET_HD, type MonetMoeDims } from './monet-hd.ts';
import type { MonetDecompose, MonetExpertsImpl, MonetLayerConfig } from './monet-layer.ts';
import {
  MONET_ROUTER_STATE,
  monetRouterBackward,
  monetRouterForward,
  monetRouterOptions,
  newMonetRouterState,
  type MonetRouterParams,
  type MonetRouterSaved,
  type MonetRouterState,
} from './monet-router.ts';
import { MONET_VD } from './monet-vd.ts';

/** One router's values for one pass, shared by the layers of its group. */
export interface MonetRouterEntry {
  layer: number; // the group's first layer, which holds the router
  g1: Float64Array; // (T, H, E)
  g2: Float64Array; // (T, H, E)
  dg1: Float64Array; // (T, H, E) summed over the group's layers in backward
  dg2: Float64Array; // (T, H, E)
  saved: MonetRouterSaved;
  aux: MonetAuxSaved;
}

export class MonetPass implements FfnPass {
  readonly kind = 'monet';
  readonly impl: MonetExpertsImpl;
  readonly routers: MonetRouterEntry[] = []; // by group: routers[g] belongs to layer g·G
  readonly saved: unknown[] = []; // by layer: the experts implementation's saved values
  constructor(
    readonly c: MonetLayerConfig,
    readonly groups: number, // moe_groups
    decompose: MonetDecompose,
  ) {
    this.impl = decompose === 'vertical' ? MONET_VD : MONET_HD;
  }
  isRouterLayer(i: number): boolean {
    return i % this.groups === 0;
  }
  /** The router entry layer i uses in this pass (its group's). */
  router(i: number): MonetRouterEntry {
    const e = this.routers[Math.floor(i / this.groups)];
    if (!e) throw new Error(`monet: layer ${i} reuses the router of layer ${i - (i % this.groups)}, not run yet`);
    return e;
  }
  private dims(T: number): MonetMoeDims {
    return { T, d: this.c.d, H: this.c.H, E: this.c.E, m: this.c.m };
  }
  forward(ctx: FfnForwardCtx, u: Float64Array, out: Float64Array): void {
    const dims = this.dims(ctx.dims.T);
    const { T, H, E } = dims;
    if (this.isRouterLayer(ctx.layer)) {
      const g1 = new Float64Array(T * H * E); // (T, H, E)
      const g2 = new Float64Array(T * H * E); // (T, H, E)
      const next = this.c.mode === 'train' ? newMonetRouterState(H) : null;
      const p = ctx.params('router.') as MonetRouterParams;
      const state = ctx.state('router.') as MonetRouterState;
      const saved = monetRouterForward(g1, g2, u, p, state, next, dims, monetRouterOptions(this.c));
      if (next) for (const name of MONET_ROUTER_STATE) ctx.setNext(`router.${name}`, next[name]);
      const aux = monetAuxForward(g1, g2, dims, this.c.unifEps);
      ctx.addAux('unif', aux.losses.unif);
      ctx.addAux('amb', aux.losses.amb);
      // dg1, dg2 (T, H, E) start at zero; every layer of the group adds into them in backward
      const dg1 = new Float64Array(T * H * E);
      const dg2 = new Float64Array(T * H * E);
      this.routers[ctx.layer / this.groups] = { layer: ctx.layer, g1, g2, dg1, dg2, saved, aux: aux.saved };
    }
    const r = this.router(ctx.layer);
    this.saved[ctx.layer] = this.impl.forward(out, u, r.g1, r.g2, ctx.params('moe.'), dims);
  }
  backward(ctx: FfnBackwardCtx, u: Float64Array, dout: Float64Array, du: Float64Array): void {
    const dims = this.dims(ctx.dims.T);
    const r = this.router(ctx.layer);
    // this layer's experts add their dg1, dg2 into the group's running sums
    const saved = this.saved[ctx.layer];
    this.impl.backward(du, ctx.grads('moe.'), r.dg1, r.dg2, dout, u, r.g1, r.g2, ctx.params('moe.'), saved, dims);
    if (!this.isRouterLayer(ctx.layer)) return;
    // the group's first layer: every layer of the group has contributed; add the aux losses and run the router
    monetAuxBackward(r.dg1, r.dg2, ctx.auxGrad('unif'), ctx.auxGrad('amb'), r.aux, dims);
    const p = ctx.params('router.') as MonetRouterParams;
    const g = ctx.grads('router.') as MonetRouterParams;
    monetRouterBackward(du, g, r.dg1, r.dg2, u, p, r.saved, dims);
    r.dg1.fill(0); // ready for another backward of the same forward
    r.dg2.fill(0);
  }
}
