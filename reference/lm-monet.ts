// The `monet` feed-forward kind of the reference LM (lm.ts): Monet experts in every layer, routers shared by groups
// of layers (SPEC §1.1, §1.7, §1.11 pitfall 5).
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
// over ROUTERS, not layers (our choice: the paper does not say whether it sums or averages; SPEC §1.7).

import type { FfnDriver, FfnLayerCtx } from './lm-ffn.ts';
import { cfgEnum, cfgInt, type Config, type ParamSpec } from './common.ts';
import { monetAuxBackward, monetAuxForward, type MonetAuxSaved } from './monet-aux.ts';
import { MONET_HD, type MonetMoeDims } from './monet-hd.ts';
import {
  parseMonetLayerConfig,
  prefixSpecs,
  type MonetDecompose,
  type MonetExpertsImpl,
  type MonetLayerConfig,
} from './monet-layer.ts';
import {
  MONET_ROUTER_STATE,
  monetRouterBackward,
  monetRouterForward,
  monetRouterOptions,
  monetRouterSavedMargin,
  monetRouterParamSpecs,
  monetRouterStateSpecs,
  newMonetRouterState,
  type MonetRouterParams,
  type MonetRouterSaved,
  type MonetRouterState,
} from './monet-router.ts';
import { MONET_VD } from './monet-vd.ts';

export interface MonetLmConfig {
  layer: MonetLayerConfig; // router + experts + aux keys
  groups: number; // moe_groups
  impl: MonetExpertsImpl; // MoHDE or MoVDE
}

/** One router's values for one pass, shared by the layers of its group through ctx.shared. */
interface RouterEntry {
  g1: Float64Array; // (T, H, E)
  g2: Float64Array; // (T, H, E)
  dg1: Float64Array; // (T, H, E) summed over the group's layers in backward
  dg2: Float64Array; // (T, H, E)
  saved: MonetRouterSaved;
  aux: MonetAuxSaved;
}

const routerKey = (first: number) => `monet.router.${first}`;
const isRouterLayer = (c: MonetLmConfig, i: number) => i % c.groups === 0;

function moeDims(c: MonetLmConfig, ctx: FfnLayerCtx): MonetMoeDims {
  return { T: ctx.dims.T, d: c.layer.d, H: c.layer.H, E: c.layer.E, m: c.layer.m };
}

function entryOf(c: MonetLmConfig, ctx: FfnLayerCtx): RouterEntry {
  const first = ctx.layer - (ctx.layer % c.groups);
  const e = ctx.shared.get(routerKey(first)) as RouterEntry | undefined;
  if (!e)
    throw new Error(`monet: layer ${ctx.layer} reuses the router of layer ${first}, which has not run in this pass`);
  return e;
}

/**
 * The routing weights (g1, g2) (T, H, E) that layer ctx.layer uses in the current pass (its group's router). A hook
 * for the interpretability tools (src/interp), which read composite scores g_ij = Σ_h g1[h,i]·g2[h,j] and ablate
 * single composite experts after the layer's forward.
 */
export function monetLayerRouting(c: MonetLmConfig, ctx: FfnLayerCtx): { g1: Float64Array; g2: Float64Array } {
  const e = entryOf(c, ctx);
  return { g1: e.g1, g2: e.g2 };
}

export const monetDriver: FfnDriver<MonetLmConfig, unknown> = {
  parse(raw: Config, cfg, where) {
    const decompose = cfgEnum<MonetDecompose>(raw, 'moe_decompose', ['vertical', 'horizontal'], where);
    // The router's BatchNorm mode is the model's mode; hidden_size is the model's.
    const layer = parseMonetLayerConfig({ ...raw, mode: cfg.mode }, where, decompose);
    const groups = cfgInt(raw, 'moe_groups', where);
    return { layer, groups, impl: decompose === 'vertical' ? MONET_VD : MONET_HD };
  },
  auxNames: () => ['unif', 'amb'],
  paramSpecs(c, _cfg, i) {
    const specs: ParamSpec[] = [];
    if (isRouterLayer(c, i)) specs.push(...prefixSpecs('router.', monetRouterParamSpecs(c.layer)));
    specs.push(...prefixSpecs('moe.', c.impl.paramSpecs(c.layer)));
    return specs;
  },
  stateSpecs(c, _cfg, i) {
    return isRouterLayer(c, i) ? monetRouterStateSpecs(c.layer).map((s) => ({ ...s, name: `router.${s.name}` })) : [];
  },
  forward(c, ctx, u, out) {
    const dims = moeDims(c, ctx);
    const { T, H, E } = dims;
    if (isRouterLayer(c, ctx.layer)) {
      const g1 = new Float64Array(T * H * E); // (T, H, E)
      const g2 = new Float64Array(T * H * E); // (T, H, E)
      const next = c.layer.mode === 'train' ? newMonetRouterState(H) : null;
      const saved = monetRouterForward(
        g1,
        g2,
        u,
        ctx.params('router.') as MonetRouterParams,
        ctx.state('router.') as MonetRouterState,
        next,
        dims,
        monetRouterOptions(c.layer),
      );
      if (next) for (const name of MONET_ROUTER_STATE) ctx.setNext(`router.${name}`, next[name]);
      ctx.addMargin(monetRouterSavedMargin(saved, dims));
      const aux = monetAuxForward(g1, g2, dims, c.layer.unifEps);
      ctx.addAux('unif', aux.losses.unif);
      ctx.addAux('amb', aux.losses.amb);
      // dg1, dg2 (T, H, E) start at zero; every layer of the group adds into them in backward
      const entry: RouterEntry = {
        g1,
        g2,
        dg1: new Float64Array(T * H * E),
        dg2: new Float64Array(T * H * E),
        saved,
        aux: aux.saved,
      };
      ctx.shared.set(routerKey(ctx.layer), entry);
    }
    const e = entryOf(c, ctx);
    return c.impl.forward(out, u, e.g1, e.g2, ctx.params('moe.'), dims);
  },
  backward(c, ctx, saved, u, dout, du) {
    const dims = moeDims(c, ctx);
    const e = entryOf(c, ctx);
    // this layer's experts add their dg1, dg2 into the group's running sums
    c.impl.backward(du, ctx.grads('moe.'), e.dg1, e.dg2, dout, u, e.g1, e.g2, ctx.params('moe.'), saved, dims);
    if (!isRouterLayer(c, ctx.layer)) return;
    // the group's first layer: every layer of the group has contributed; add the aux losses and run the router
    monetAuxBackward(e.dg1, e.dg2, ctx.auxGrad('unif'), ctx.auxGrad('amb'), e.aux, dims);
    monetRouterBackward(
      du,
      ctx.grads('router.') as MonetRouterParams,
      e.dg1,
      e.dg2,
      u,
      ctx.params('router.') as MonetRouterParams,
      e.saved,
      dims,
    );
    e.dg1.fill(0); // ready for another backward of the same forward
    e.dg2.fill(0);
  },
  examples: () => [
    {
      label: 'monet vertical, groups of 2',
      config: {
        moe_experts: 4,
        moe_heads: 2,
        moe_topk: 1,
        moe_dim: 4,
        moe_groups: 2,
        moe_decompose: 'vertical',
        hidden_act: 'relu2',
        aux: { unif: 1e-3, amb: 1e-3 },
        unif_eps: 1e-10,
        bn_eps: 1e-5,
        bn_momentum: 0.1,
      },
    },
    {
      label: 'monet horizontal, groups of 2',
      config: {
        moe_experts: 4,
        moe_heads: 2,
        moe_topk: 1,
        moe_dim: 4,
        moe_groups: 2,
        moe_decompose: 'horizontal',
        hidden_act: 'relu2',
        aux: { unif: 1e-3, amb: 1e-3 },
        unif_eps: 1e-10,
        bn_eps: 1e-5,
        bn_momentum: 0.1,
      },
    },
  ],
};
