// The model the interpretability tools look inside: a run folder's checkpoint loaded into the float64 reference LM
// (reference/lm.ts) in eval mode, with a hook at every unit site (views.ts) that can READ the units and CHANGE the
// layer's output (remove chosen units' contributions exactly, or add δ to a neuron). wasm-forward.ts runs the same
// hooks on the float32 WASM backend, much faster; this file is the float64 definition they are checked against.
//
// Dimension legend:
//   B sequences, S positions, T = B·S tokens, d model dim, V vocabulary

import type { Params } from '../../reference/common.ts';
import { lmForward, type AnyFfnPass, type LmConfig, type LmForwardHooks } from '../../reference/lm.ts';
import type { FfnForwardCtx } from '../../reference/lm-ffn.ts';
import type { MonetExperts } from '../../reference/monet-expert-view.ts';
import type { MonetHdParams } from '../../reference/monet-hd.ts';
import type { MonetVdParams } from '../../reference/monet-vd.ts';
import type { SmoeSaved } from '../../reference/smoe.ts';
import { parseLm } from '../kinds/lm.ts';
import { loadModel } from '../train/checkpoint.ts';
import { estimateMemory } from '../train/memory-estimate.ts';
import type { ModelConfig } from '../train/presets.ts';
import { unitGroups, type UnitGroup, type UnitSite } from './units.ts';
import { hiddenView, monetView, neuronView, peerView, smoeView, type SiteInfo, type UnitView } from './views.ts';

export interface UnitHooks {
  /**
   * Called at every unit site: after a layer's feed-forward forward (site 'ffn': `out` (T, d) is the FFN output,
   * before the residual add) or after a TopK 'hidden' map (`out` (T, d) is the new residual stream). May change
   * `out`; nothing else.
   */
  atSite(view: UnitView, out: Float64Array): void;
}

/** The unit group at (layer, site), or null when that site holds no listed units. */
export function groupAt(groups: UnitGroup[], layer: number, site: UnitSite): UnitGroup | null {
  return groups.find((g) => g.site === site && g.layers.includes(layer)) ?? null;
}

/** Monet expert weights of one layer (`moe.` parameters) as the expert view reads them. */
export function monetExperts(config: ModelConfig, p: Params): MonetExperts {
  return config.moe_decompose === 'horizontal'
    ? { decompose: 'horizontal', params: p as MonetHdParams }
    : { decompose: 'vertical', params: p as MonetVdParams };
}

/** SMoE slot outputs (T·k, d) from the reference's per-expert rows. */
function smoePairOut(s: SmoeSaved, T: number, k: number, d: number): Float64Array {
  const out = new Float64Array(T * k * d); // (T·k, d)
  for (const ex of s.experts) {
    for (let r = 0; r < ex.rows.length; r++) {
      const pair = ex.rows[r] * k + ex.slots[r];
      out.set(ex.ye.subarray(r * d, (r + 1) * d), pair * d);
    }
  }
  return out;
}

/** The view of one layer's feed-forward units, from what the layer's feed-forward pass saved. */
function ffnView(model: InterpModel, site: SiteInfo, ctx: FfnForwardCtx, pass: AnyFfnPass, u: Float64Array): UnitView {
  const { T, d } = site;
  const l = ctx.layer;
  switch (pass.kind) {
    case 'dense':
      return neuronView(site, pass.saved[l].h, ctx.params('mlp.')['down_proj.weight']);
    case 'topk': {
      const s = pass.saved[l];
      return neuronView(site, s.topk ? s.s.a : s.s.h, ctx.params('mlp.')['down_proj.weight']);
    }
    case 'smoe': {
      const s = pass.saved[l];
      const k = pass.c.k;
      return smoeView(site, k, s.topk, s.w, smoePairOut(s, T, k, d));
    }
    case 'peer': {
      const s = pass.saved[l];
      const p = ctx.params('mlp.');
      if (s.kind === 'dense') return neuronView(site, s.saved.h, p['down_proj.weight']);
      const { H, k, activation } = pass.c;
      return peerView(site, H, k, activation, s.saved.ids, s.saved.w, s.saved.hpre, p.w_up);
    }
    case 'monet': {
      const { g1, g2 } = pass.router(l); // the routing weights of this layer's group
      return monetView(site, g1, g2, u, monetExperts(model.config, ctx.params('moe.')), model.config.moe_dim!);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading and running.

export interface InterpModel {
  dir: string;
  config: ModelConfig;
  groups: UnitGroup[];
  lm: LmConfig; // eval mode
  /** float64 weights for the reference LM; empty for a MonetLLM folder streamed onto the WASM device (run-info.ts) */
  params: Params;
  state: Params; // reference names (no `state.` prefix)
  /** The TopK α the model runs with (0 after annealing); unused by other kinds. */
  alpha: number;
  /**
   * A faster forward with the same hooks (wasm-forward.ts: the float32 WASM backend); null = the float64 reference.
   * interpForward uses it when present.
   */
  fast: FastForward | null;
}

/** A forward pass that runs the same hooks as the reference one (see wasm-forward.ts). */
export interface FastForward {
  readonly name: string;
  forward(tokens: Int32Array, B: number, S: number, hooks: UnitHooks | null): ForwardResult;
  /** Parameter `name` on the host as float64 (read back from the device when the model keeps no host copy). */
  param(name: string): Float64Array;
  dispose(): void;
}

/**
 * Parameter `name` as float64 on the host: the model's own copy, or read from its fast forward's device (a MonetLLM
 * folder streamed onto the device has no host copy: run-info.ts).
 */
export function modelParam(model: InterpModel, name: string): Float64Array {
  const p = model.params[name] ?? model.fast?.param(name);
  if (!p) throw new Error(`inspect: the model has no parameter '${name}'`);
  return p;
}

/** Build an eval-mode model from a config and float64 parameters (tests use this with random weights). */
export function makeInterpModel(
  dir: string,
  config: ModelConfig,
  params: Params,
  state: Params,
  alpha = 0,
): InterpModel {
  const groups = unitGroups(config);
  const raw: Record<string, unknown> = { ...config, mode: 'eval' };
  delete raw.tokenizer;
  delete raw.monet_ts_format;
  // TopK: α is the end-of-training value (0 once annealing is over); the checkpoint's config.alpha is the start.
  if (config.ffn === 'topk') raw.alpha = alpha;
  const lm = parseLm(raw, `${dir}/config.json`);
  return { dir, config, groups, lm, params, state, alpha, fast: null };
}

/** Load runs/<name>/ (config.json + model.safetensors) into float64. */
export function loadInterpModel(dir: string, alpha = 0): InterpModel {
  const { config, params, state } = loadModel(dir);
  const p: Params = {};
  for (const [k, v] of params) p[k] = Float64Array.from(v);
  const s: Params = {};
  for (const [k, v] of state) s[k.replace(/^state\./, '')] = Float64Array.from(v);
  return makeInterpModel(dir, config, p, s, alpha);
}

/** The reference LM's hooks: every unit site calls `hooks` with its view. */
export function lmHooks(model: InterpModel, hooks: UnitHooks | null): LmForwardHooks {
  if (!hooks) return {};
  const d = model.lm.d;
  const site = (ctx: FfnForwardCtx, where: UnitSite, input: Float64Array | null): SiteInfo | null => {
    const group = groupAt(model.groups, ctx.layer, where);
    return group ? { group, layer: ctx.layer, T: ctx.dims.T, d, input } : null;
  };
  return {
    afterFfn(ctx, pass, u, out) {
      const s = site(ctx, 'ffn', u);
      if (s) hooks.atSite(ffnView(model, s, ctx, pass, u), out);
    },
    afterPost(ctx, _pass, out) {
      const s = site(ctx, 'hidden', null);
      if (s) hooks.atSite(hiddenView(s, out), out);
    },
  };
}

export interface ForwardResult {
  logits: Float64Array | Float32Array; // (B, S, V)
  /** (B, S−1) next-token cross-entropy at each position s (predicting token s+1). */
  nll: Float64Array;
}

/** (B, S−1) next-token cross-entropy from logits (B, S, V), in float64. */
export function nextTokenLoss(
  logits: Float64Array | Float32Array,
  tokens: Int32Array,
  B: number,
  S: number,
  V: number,
): Float64Array {
  const nll = new Float64Array(B * (S - 1)); // (B, S−1)
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S - 1; s++) {
      const row = logits.subarray((b * S + s) * V, (b * S + s + 1) * V); // (V)
      let mx = -Infinity;
      for (let v = 0; v < V; v++) if (row[v] > mx) mx = row[v];
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - mx);
      nll[b * (S - 1) + s] = mx + Math.log(z) - row[tokens[b * S + s + 1]];
    }
  }
  return nll;
}

/** Most windows one inspection forward runs at once. */
const MAX_WINDOWS = 16;
/** What one forward's activations may take (the estimate of src/train/memory.ts), bytes. */
const ACTIVATION_BUDGET = 2 ** 30;

/**
 * Windows of S tokens per forward pass: 16 for the small models trained here, fewer (at least one) where one
 * window's activations are large (a 1.4B MonetLLM folder: one), so that they fit beside the weights in wasm32's
 * 4 GiB.
 */
export function windowsPerForward(model: InterpModel, S: number): number {
  const perWindow = estimateMemory(model.config, { purpose: 'eval', backend: 'wasm', batch: 1, seq: S }).bytes
    .activations;
  return Math.max(1, Math.min(MAX_WINDOWS, Math.floor(ACTIVATION_BUDGET / perWindow)));
}

/**
 * Eval-mode forward of (B, S) tokens with optional hooks; returns logits and per-position next-token losses. Runs on
 * the model's fast forward when it has one, else on the float64 reference.
 */
export function interpForward(
  model: InterpModel,
  tokens: Int32Array,
  B: number,
  S: number,
  hooks: UnitHooks | null = null,
): ForwardResult {
  if (model.fast) return model.fast.forward(tokens, B, S, hooks);
  const fwd = lmForward(model.lm, model.params, tokens, B, S, model.state, lmHooks(model, hooks));
  return { logits: fwd.logits, nll: nextTokenLoss(fwd.logits, tokens, B, S, model.lm.V) };
}

/** Hooks that remove the given units (one set per unit group) from every layer of their group. */
export function maskHooks(remove: ReadonlyArray<ReadonlySet<number>>): UnitHooks {
  return {
    atSite(view, out) {
      const r = remove[view.group.group];
      if (r && r.size > 0) view.removeUnits(out, r);
    },
  };
}

/** Hooks that add δ to neuron n of unit group g at every position. */
export function steerHooks(group: number, neuron: number, delta: number): UnitHooks {
  return {
    atSite(view, out) {
      // δ = 0 still goes through steerNeuron (adding 0·down[:, n]), so the no-op test exercises the real path.
      if (view.group.group === group) view.steerNeuron(out, neuron, delta);
    },
  };
}
