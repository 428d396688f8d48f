// A whole Monet feed-forward layer as one fixture case: router → experts (MoHDE or MoVDE) → aux losses.
// (SPEC §1.3–1.7, §1.10.) The math lives in monet-router.ts, monet-hd.ts, monet-vd.ts and monet-aux.ts; this file
// wires them together for the `monet-hd` / `monet-vd` fixture kinds and holds the config both kinds share.
//
// Dimension legend:   T tokens   d model dim   H expert heads   E experts per side = √N   m moe_dim
//
// Forward:  (g1, g2) = Router(x);  y = Experts(x, g1, g2);  (L_unif, L_amb) = Aux(g1, g2)
// Objective (FIXTURES.md): L = Σ y ⊙ dy + aux.unif·L_unif + aux.amb·L_amb
// Backward, in reverse: the experts' backward gives dx and dg1, dg2; the aux losses add their dg; the router turns
// the total dg into its weight gradients and a second contribution to dx (the router reads the same x).

import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import { u8, type TensorMap } from '../src/tensor.ts';
import {
  CaseInputs,
  cfgAux,
  cfgEnum,
  cfgInt,
  cfgNum,
  gradBuffer,
  gradParams,
  put,
  putGrads,
  readParams,
  type Config,
  type ParamSpec,
  type Params,
} from './common.ts';
import { monetAuxBackward, monetAuxForward } from './monet-aux.ts';
import type { MonetMoeDims } from './monet-hd.ts';
import {
  MONET_ROUTER_STATE,
  monetRouterBackward,
  monetRouterForward,
  monetRouterOptions,
  monetRouterParamSpecs,
  newMonetRouterState,
  parseMonetRouterConfig,
  readMonetRouterState,
  type MonetRouterConfig,
  type MonetRouterParams,
} from './monet-router.ts';

export type MonetDecompose = 'horizontal' | 'vertical';

/** A Monet layer's config: the router keys plus the experts' and the aux losses'. */
export interface MonetLayerConfig extends MonetRouterConfig {
  m: number; // moe_dim
  aux: { unif: number; amb: number }; // loss coefficients (paper: λ = 1e-3 for both)
  unifEps: number; // unif_eps: L_unif uses log(ḡ + unif_eps); default 1e-10
}

export const MONET_DEFAULT_AUX = { unif: 1e-3, amb: 1e-3 };

export function parseMonetLayerConfig(config: Config, where: string, decompose: MonetDecompose): MonetLayerConfig {
  const r = parseMonetRouterConfig(config, where);
  const m = cfgInt(config, 'moe_dim', where);
  cfgEnum(config, 'hidden_act', ['relu2'] as const, where, 'relu2'); // the only activation Monet uses
  if (decompose === 'vertical') {
    if (r.d % 2)
      throw new Error(
        `${where}: config.hidden_size: expected an even number (MoVDE splits the output in halves), found ${r.d}`,
      );
    if (m % 2)
      throw new Error(
        `${where}: config.moe_dim: expected an even number (MoVDE splits the expert in halves), found ${m}`,
      );
  }
  const aux = config.aux === undefined ? { ...MONET_DEFAULT_AUX } : cfgAux(config, ['unif', 'amb'], where);
  return { ...r, m, aux: { unif: aux.unif, amb: aux.amb }, unifEps: cfgNum(config, 'unif_eps', where, 1e-10) };
}

/** What monet-hd.ts and monet-vd.ts provide so that this file (and the LM driver) can run either. */
export interface MonetExpertsImpl {
  decompose: MonetDecompose;
  /** Parameters, named relative to the experts module (`u.weight`, … without `moe.`). */
  paramSpecs(c: { d: number; E: number; m: number }): ParamSpec[];
  forward(
    out: Float64Array,
    x: Float64Array,
    g1: Float64Array,
    g2: Float64Array,
    p: Params,
    dims: MonetMoeDims,
  ): unknown;
  backward(
    dx: Float64Array,
    grads: Params,
    dg1: Float64Array,
    dg2: Float64Array,
    dout: Float64Array,
    x: Float64Array,
    g1: Float64Array,
    g2: Float64Array,
    p: Params,
    saved: unknown,
    dims: MonetMoeDims,
  ): void;
}

/** Specs with a name prefix (e.g. `router.` or `moe.`). */
export function prefixSpecs(prefix: string, specs: readonly ParamSpec[]): ParamSpec[] {
  return specs.map((s) => ({ ...s, name: prefix + s.name }));
}

/** The entries of `p` whose names start with `prefix`, keyed without it (the same arrays, not copies). */
export function stripPrefix(prefix: string, p: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

/**
 * Fixture cases `monet-hd` / `monet-vd`: in.x (T, d), in.dy (T, d) →
 * out.y, out.loss_unif, out.loss_amb (raw, without coefficients), out.g1, out.g2, idx.mask1, idx.mask2,
 * next.router.norm*.running_* (train mode), grad.in.x, grad.param.router.*, grad.param.moe.*.
 */
export function runMonetMoeCase(c: FixtureCase, opts: RunOptions | undefined, impl: MonetExpertsImpl): TensorMap {
  const inp = new CaseInputs(c);
  const cfg = parseMonetLayerConfig(c.config, inp.where, impl.decompose);
  const { d, H, E, m } = cfg;
  const T = inp.shapeOf('in.x')[0];
  const x = inp.f64('in.x', [T, d]); // (T, d)
  const routerSpecs = prefixSpecs('router.', monetRouterParamSpecs(cfg));
  const moeSpecs = prefixSpecs('moe.', impl.paramSpecs(cfg));
  const specs = [...routerSpecs, ...moeSpecs];
  const p = readParams(inp, specs);
  const rp = stripPrefix('router.', p) as MonetRouterParams;
  const mp = stripPrefix('moe.', p);
  const state = readMonetRouterState(inp, cfg, 'router.');
  const wantGrad = !opts?.forwardOnly;
  const dy = wantGrad || inp.has('in.dy') ? inp.f64('in.dy', [T, d]) : null; // (T, d)
  inp.assertAllUsed();

  const dims: MonetMoeDims = { T, d, H, E, m };
  const g1 = new Float64Array(T * H * E); // (T, H, E)
  const g2 = new Float64Array(T * H * E); // (T, H, E)
  const next = cfg.mode === 'train' ? newMonetRouterState(H) : null;
  const rsaved = monetRouterForward(g1, g2, x, rp, state, next, dims, monetRouterOptions(cfg));
  const y = new Float64Array(T * d); // (T, d)
  const esaved = impl.forward(y, x, g1, g2, mp, dims);
  const aux = monetAuxForward(g1, g2, dims, cfg.unifEps);

  const out: TensorMap = new Map();
  put(out, 'out.y', [T, d], y);
  put(out, 'out.loss_unif', [], [aux.losses.unif]);
  put(out, 'out.loss_amb', [], [aux.losses.amb]);
  put(out, 'out.g1', [T, H, E], g1);
  put(out, 'out.g2', [T, H, E], g2);
  out.set('idx.mask1', u8([T, H, E], rsaved.mask1));
  out.set('idx.mask2', u8([T, H, E], rsaved.mask2));
  if (next) for (const name of MONET_ROUTER_STATE) put(out, `next.router.${name}`, [H], next[name]);
  if (!wantGrad) return out;

  const dx = gradBuffer(opts, 'grad.in.x', [T, d]); // (T, d)
  const g = gradParams(opts, specs);
  const dg1 = new Float64Array(T * H * E); // (T, H, E) total gradient of the routing weights
  const dg2 = new Float64Array(T * H * E); // (T, H, E)
  impl.backward(dx, stripPrefix('moe.', g), dg1, dg2, dy!, x, g1, g2, mp, esaved, dims);
  monetAuxBackward(dg1, dg2, cfg.aux.unif, cfg.aux.amb, aux.saved, dims);
  monetRouterBackward(dx, stripPrefix('router.', g) as MonetRouterParams, dg1, dg2, x, rp, rsaved, dims);
  put(out, 'grad.in.x', [T, d], dx);
  putGrads(out, specs, g);
  return out;
}
