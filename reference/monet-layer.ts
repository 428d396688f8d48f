// A whole Monet feed-forward layer: router → experts (MoHDE or MoVDE) → aux losses, forward and backward.
// The math of each part lives in monet-router.ts, monet-hd.ts, monet-vd.ts and monet-aux.ts; this file composes
// them the way one layer with its own router does (the `monet-hd` / `monet-vd` fixture kinds). In an LM, routers are
// shared by groups of layers and lm-monet.ts composes the same parts across layers.
//
// Dimension legend:   T tokens   d model dim   H expert heads   E experts per side = √N   m moe_dim
//
// Forward:  (g1, g2) = Router(x);  y = Experts(x, g1, g2);  (L_unif, L_amb) = Aux(g1, g2)
// Objective (docs/fixtures.md §2): L = Σ y ⊙ dy + aux.unif·L_unif + aux.amb·L_amb
// Backward, in reverse: the experts' backward gives dx and dg1, dg2; the aux losses add their dg; the router turns
// the total dg into its weight gradients and a second contribution to dx (the router reads the same x).

import type { Params } from './common.ts';
import { monetAuxBackward, monetAuxForward, type MonetAuxLosses, type MonetAuxSaved } from './monet-aux.ts';
import type { MonetMoeDims } from './monet-hd.ts';
import {
  monetRouterBackward,
  monetRouterForward,
  monetRouterOptions,
  type MonetRouterConfig,
  type MonetRouterParams,
  type MonetRouterSaved,
  type MonetRouterState,
} from './monet-router.ts';

export type MonetDecompose = 'horizontal' | 'vertical';

/** A Monet layer's hyperparameters: the router keys plus the experts' and the aux losses' (src/kinds/monet.ts). */
export interface MonetLayerConfig extends MonetRouterConfig {
  m: number; // moe_dim
  aux: { unif: number; amb: number }; // loss coefficients (paper: λ = 1e-3 for both)
  unifEps: number; // unif_eps: L_unif uses log(ḡ + unif_eps); default 1e-10
}

/** What monet-hd.ts and monet-vd.ts provide so that this file (and the LM's Monet layers) can run either. */
export interface MonetExpertsImpl {
  decompose: MonetDecompose;
  forward(
    out: Float64Array, // (T, d)
    x: Float64Array, // (T, d)
    g1: Float64Array, // (T, H, E)
    g2: Float64Array, // (T, H, E)
    p: Params, // the experts' parameters without the `moe.` prefix
    dims: MonetMoeDims,
  ): unknown;
  backward(
    dx: Float64Array, // (T, d) accumulated
    grads: Params, // accumulated, same names as p
    dg1: Float64Array, // (T, H, E) accumulated
    dg2: Float64Array, // (T, H, E) accumulated
    dout: Float64Array, // (T, d)
    x: Float64Array,
    g1: Float64Array,
    g2: Float64Array,
    p: Params,
    saved: unknown, // what forward returned
    dims: MonetMoeDims,
  ): void;
}

/** The parameters of one Monet layer: the router's and the experts'. */
export interface MonetLayerParams {
  router: MonetRouterParams;
  experts: Params;
}

/** What forward saves for backward. */
export interface MonetLayerSaved {
  router: MonetRouterSaved;
  experts: unknown; // the experts implementation's saved values
  aux: MonetAuxSaved;
  losses: MonetAuxLosses; // raw L_unif, L_amb (out.loss_unif, out.loss_amb)
}

/**
 * Forward. Writes y (T, d) and the routing weights g1, g2 (T, H, E); in train mode the router's updated running
 * statistics go to `next` when given.
 */
export function monetLayerForward(
  y: Float64Array, // (T, d) out
  g1: Float64Array, // (T, H, E) out
  g2: Float64Array, // (T, H, E) out
  x: Float64Array, // (T, d)
  p: MonetLayerParams,
  state: MonetRouterState,
  next: MonetRouterState | null,
  dims: MonetMoeDims,
  cfg: MonetLayerConfig,
  impl: MonetExpertsImpl,
): MonetLayerSaved {
  const router = monetRouterForward(g1, g2, x, p.router, state, next, dims, monetRouterOptions(cfg));
  const experts = impl.forward(y, x, g1, g2, p.experts, dims);
  const aux = monetAuxForward(g1, g2, dims, cfg.unifEps);
  return { router, experts, aux: aux.saved, losses: aux.losses };
}

/** Backward of L = Σ y ⊙ dy + aux.unif·L_unif + aux.amb·L_amb (accumulates into dx and the gradient records). */
export function monetLayerBackward(
  dx: Float64Array, // (T, d) accumulated
  grads: MonetLayerParams, // accumulated
  dy: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: MonetLayerParams,
  saved: MonetLayerSaved,
  dims: MonetMoeDims,
  cfg: MonetLayerConfig,
  impl: MonetExpertsImpl,
): void {
  const { T, H, E } = dims;
  const { g1, g2 } = saved.router;
  const dg1 = new Float64Array(T * H * E); // (T, H, E) total gradient of the routing weights
  const dg2 = new Float64Array(T * H * E); // (T, H, E)
  impl.backward(dx, grads.experts, dg1, dg2, dy, x, g1, g2, p.experts, saved.experts, dims);
  monetAuxBackward(dg1, dg2, cfg.aux.unif, cfg.aux.amb, saved.aux, dims);
  monetRouterBackward(dx, grads.router, dg1, dg2, x, p.router, saved.router, dims);
}
