// The model the interpretability tools look inside: a run folder's checkpoint loaded into the float64 reference LM
// (reference/lm.ts) in eval mode, with a hook after every feed-forward layer that can READ the layer's units and
// CHANGE its output (remove chosen units' contributions, or add δ to a neuron).
//
// Dimension legend:
//   B sequences, S positions, T = B·S tokens, d model dim, V vocabulary
//   F hidden neurons of a dense / TopK MLP, E experts (SMoE), N experts (PEER, Monet N = E_m² composite)
//   E_m experts per side of a Monet router, H Monet expert heads, m moe_dim, k top-k
//
// "Units" of a layer, one id space per layer (the unit kinds):
//   dense   neuron n of the MLP hidden layer h (T, F) — the input of down_proj. Score = h[t,n].
//   topk    neuron n of a TopK layer, after TopK (T, F). Score = a[t,n] (≥ 0, zero when not in the top k).
//   smoe    expert e. Score = its gate weight w (softmax over the selected k), 0 when not selected.
//   peer    expert id. Score = Σ over heads of its softmax weight, 0 when not retrieved.
//   monet   composite expert (i, j), id = i·E_m + j (official readout). Score = g_ij = Σ_h g1[h,i]·g2[h,j].
// A unit "fires" at a position when its score exceeds FIRE_THRESHOLD[kind] (Monet README: g_ij > 1e-2).
//
// Why a hook and not a copy of the LM: the FFN output `out` of layer l enters the residual stream as x' = h + out,
// and every unit kind above is LINEAR in its contribution to `out`:
//   dense/topk: out = down·h = Σ_n h[t,n]·down[:,n]        removing neuron n: out −= h[t,n]·down[:,n]
//                                                          steering: h[t,n] += δ ⇔ out += δ·down[:,n]
//   smoe:       out = Σ_s w_s·E_s(x)                         removing expert e: out −= w_e·E_e(x)
//   peer:       out = Σ_h Σ_r w_hr·σ(w_down[id]·x)·w_up[id]  removing expert id: subtract its terms
//   monet:      out = Σ_ij g_ij·E_ij(x)                      removing (i, j): out −= g_ij·E_ij(x) (SPEC §1.11 #6)
// so the hook subtracts (or adds) exactly those terms from the layer's output after the layer's own forward, and
// nothing else in the model changes. (For Monet, zeroing g1[:,i] would remove the whole row of E_m experts.)

import { act } from '../../reference/activations.ts';
import type { Params } from '../../reference/common.ts';
import type { DenseFfnSaved } from '../../reference/dense-ffn.ts';
import { buildLm, lmForward, type LmModel } from '../../reference/lm.ts';
import type { FfnDriver, FfnLayerCtx } from '../../reference/lm-ffn.ts';
import { monetLayerRouting, type MonetLmConfig } from '../../reference/lm-monet.ts';
import type { PeerLmConfig } from '../../reference/lm-peer.ts';
import { monetExpertContribution, type MonetExperts } from '../../reference/monet-expert-view.ts';
import type { MonetHdParams } from '../../reference/monet-hd.ts';
import type { MonetVdParams } from '../../reference/monet-vd.ts';
import type { PeerSaved } from '../../reference/peer.ts';
import type { SmoeConfig, SmoeSaved } from '../../reference/smoe.ts';
import type { TopkFfnSaved } from '../../reference/topk-ffn.ts';
import { loadModel } from '../train/checkpoint.ts';
import type { ModelConfig } from '../train/presets.ts';

export type UnitKind = 'dense' | 'topk' | 'smoe' | 'peer' | 'monet';

/** Score above which a unit counts as firing. Monet: the official README's g_ij > 1e-2; others: any positive value. */
export const FIRE_THRESHOLD: Record<UnitKind, number> = { dense: 0, topk: 0, smoe: 0, peer: 0, monet: 1e-2 };

/** What kind of units layer `layer` of a model has, and how many. */
export interface LayerUnits {
  layer: number;
  kind: UnitKind;
  count: number;
  /** Monet only: experts per side, so unit id u is the composite (⌊u/E⌋, u mod E). */
  sideExperts?: number;
}

/** The unit kinds of every layer, from the model config (no weights needed). */
export function layerUnits(config: ModelConfig): LayerUnits[] {
  const out: LayerUnits[] = [];
  const L = config.num_hidden_layers;
  for (let l = 0; l < L; l++) {
    switch (config.ffn) {
      case 'dense':
        out.push({ layer: l, kind: 'dense', count: config.intermediate_size! });
        break;
      case 'topk': {
        if (config.topk_placement === 'hidden') {
          throw new Error(
            "inspect: TopK models with topk_placement 'hidden' are not supported (their TopK units are residual-stream dimensions after the block, not MLP neurons); train with --topk-placement ffn",
          );
        }
        const nLast = config.n_last_non_topk ?? 2;
        out.push({ layer: l, kind: l < L - nLast ? 'topk' : 'dense', count: config.intermediate_size! });
        break;
      }
      case 'smoe':
        out.push({ layer: l, kind: 'smoe', count: config.num_experts! });
        break;
      case 'peer':
        if (config.peer_layers!.includes(l)) out.push({ layer: l, kind: 'peer', count: config.num_experts! });
        else out.push({ layer: l, kind: 'dense', count: config.intermediate_size! });
        break;
      case 'monet':
        out.push({ layer: l, kind: 'monet', count: config.moe_experts! ** 2, sideExperts: config.moe_experts! });
        break;
    }
  }
  return out;
}

/** A readable name of unit u: 'n17', 'e3', '(4,19)' for Monet composite (i, j). */
export function unitName(lu: LayerUnits, u: number): string {
  switch (lu.kind) {
    case 'monet':
      return `(${Math.floor(u / lu.sideExperts!)},${u % lu.sideExperts!})`;
    case 'smoe':
    case 'peer':
      return `e${u}`;
    default:
      return `n${u}`;
  }
}

/** Parse a unit given on the command line: '17', 'n17', 'e3', or 'i,j' / '(i,j)' for Monet. */
export function parseUnit(lu: LayerUnits, text: string): number {
  const t = text.trim().replace(/^\(|\)$/g, '');
  let u: number;
  const pair = /^(\d+)\s*,\s*(\d+)$/.exec(t);
  if (pair) {
    if (lu.kind !== 'monet')
      throw new Error(
        `inspect: unit '${text}' is an (i,j) pair, but layer ${lu.layer} has ${lu.kind} units (give a number)`,
      );
    const E = lu.sideExperts!;
    const i = Number(pair[1]);
    const j = Number(pair[2]);
    if (i >= E || j >= E)
      throw new Error(`inspect: Monet expert (${i},${j}) out of range: both indices must be < ${E} (moe_experts)`);
    u = i * E + j;
  } else {
    const m = /^[ne]?(\d+)$/.exec(t);
    if (!m) throw new Error(`inspect: expected a unit id like 17, n17, e3 or i,j (Monet), found '${text}'`);
    u = Number(m[1]);
  }
  if (u >= lu.count)
    throw new Error(`inspect: unit ${text} out of range: layer ${lu.layer} has ${lu.count} ${lu.kind} units`);
  return u;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-layer view handed to hooks.

/** One feed-forward layer right after its forward, with its units exposed. */
export interface FfnView {
  readonly units: LayerUnits;
  readonly T: number;
  readonly d: number;
  /** Calls visit(t, u, score) for every unit with a non-zero score at token t (tokens in order). */
  visitScores(visit: (t: number, u: number, score: number) => void): void;
  /** out (T, d) −= the exact contribution of each unit in `remove` (the layer's output before the residual add). */
  removeUnits(out: Float64Array, remove: ReadonlySet<number>): void;
  /** out (T, d) += δ·down[:, n] at every token: neuron n's activation raised by δ (dense/topk only). */
  steerNeuron(out: Float64Array, n: number, delta: number): void;
}

export interface FfnHooks {
  /**
   * Called after layer `view.units.layer`'s FFN forward; may modify `out` (T, d), the FFN output. `u` (T, d) is the
   * FFN input (post_attention_layernorm output), read-only.
   */
  afterFfn(view: FfnView, out: Float64Array, u: Float64Array): void;
}

/** Neuron view over a hidden activation h (T, F) that feeds down (d, F). */
function neuronView(units: LayerUnits, T: number, d: number, h: Float64Array, down: Float64Array): FfnView {
  const F = units.count;
  return {
    units,
    T,
    d,
    visitScores(visit) {
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < F; n++) {
          const s = h[t * F + n];
          if (s !== 0) visit(t, n, s);
        }
      }
    },
    removeUnits(out, remove) {
      for (const n of remove) {
        for (let t = 0; t < T; t++) {
          const a = h[t * F + n];
          if (a === 0) continue;
          for (let o = 0; o < d; o++) out[t * d + o] -= a * down[o * F + n];
        }
      }
    },
    steerNeuron(out, n, delta) {
      if (n < 0 || n >= F) throw new Error(`inspect: neuron ${n} out of range [0, ${F}) in layer ${units.layer}`);
      for (let t = 0; t < T; t++) for (let o = 0; o < d; o++) out[t * d + o] += delta * down[o * F + n];
    },
  };
}

function noSteer(kind: UnitKind): never {
  throw new Error(
    `inspect: steering adds δ to a neuron; layer units of kind '${kind}' are experts, not neurons (use a dense or TopK model)`,
  );
}

function smoeView(units: LayerUnits, T: number, d: number, c: SmoeConfig, s: SmoeSaved): FfnView {
  const k = c.k;
  return {
    units,
    T,
    d,
    visitScores(visit) {
      for (let t = 0; t < T; t++) for (let r = 0; r < k; r++) visit(t, s.topk[t * k + r], s.w[t * k + r]);
    },
    removeUnits(out, remove) {
      for (const e of remove) {
        const ex = s.experts[e];
        for (let r = 0; r < ex.rows.length; r++) {
          const t = ex.rows[r];
          const gate = s.w[t * k + ex.slots[r]];
          for (let o = 0; o < d; o++) out[t * d + o] -= gate * ex.ye[r * d + o];
        }
      }
    },
    steerNeuron: () => noSteer('smoe'),
  };
}

function peerView(units: LayerUnits, T: number, d: number, c: PeerLmConfig, s: PeerSaved, wUp: Float64Array): FfnView {
  const { H, k } = c.peer;
  return {
    units,
    T,
    d,
    visitScores(visit) {
      // The same expert can be retrieved by several heads of one token: its score is the sum of its weights.
      const acc = new Map<number, number>();
      for (let t = 0; t < T; t++) {
        acc.clear();
        for (let j = t * H * k; j < (t + 1) * H * k; j++) acc.set(s.ids[j], (acc.get(s.ids[j]) ?? 0) + s.w[j]);
        for (const [u, sc] of [...acc.entries()].sort((a, b) => a[0] - b[0])) visit(t, u, sc);
      }
    },
    removeUnits(out, remove) {
      for (let t = 0; t < T; t++) {
        for (let j = t * H * k; j < (t + 1) * H * k; j++) {
          const id = s.ids[j];
          if (!remove.has(id)) continue;
          const coef = s.w[j] * act(c.peer.activation, s.hpre[j]);
          for (let o = 0; o < d; o++) out[t * d + o] -= coef * wUp[id * d + o];
        }
      }
    },
    steerNeuron: () => noSteer('peer'),
  };
}

function monetView(
  units: LayerUnits,
  T: number,
  d: number,
  c: MonetLmConfig,
  ctx: FfnLayerCtx,
  u: Float64Array,
): FfnView {
  const { H, E, m } = c.layer;
  const { g1, g2 } = monetLayerRouting(c, ctx); // (T, H, E) each
  const p = ctx.params('moe.');
  const experts: MonetExperts =
    c.impl.decompose === 'horizontal'
      ? { decompose: 'horizontal', params: p as MonetHdParams }
      : { decompose: 'vertical', params: p as MonetVdParams };
  const dims = { T, d, H, E, m };
  /**
   * Composite scores of token t, sparse: only pairs (i, j) with g1[h,i] > 0 and g2[h,j] > 0 for some head h can be
   * non-zero, and a router selects only a few experts per head, so this touches far fewer than E² pairs.
   */
  const scratch = new Float64Array(E * E); // (E·E) g_ij of one token
  const touched: number[] = [];
  const tokenScores = (t: number, visit: (id: number, score: number) => void) => {
    touched.length = 0;
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * E;
      for (let i = 0; i < E; i++) {
        const a = g1[o + i];
        if (a === 0) continue;
        for (let j = 0; j < E; j++) {
          const b = g2[o + j];
          if (b === 0) continue;
          const id = i * E + j;
          if (scratch[id] === 0) touched.push(id);
          scratch[id] += a * b;
        }
      }
    }
    touched.sort((x, y) => x - y);
    for (const id of touched) {
      visit(id, scratch[id]);
      scratch[id] = 0;
    }
  };
  return {
    units,
    T,
    d,
    visitScores(visit) {
      for (let t = 0; t < T; t++) tokenScores(t, (id, s) => visit(t, id, s));
    },
    removeUnits(out, remove) {
      if (remove.size === 0) return;
      const contrib = new Float64Array(d); // (d) g_ij·E_ij(u_t)
      for (let t = 0; t < T; t++) {
        tokenScores(t, (id) => {
          if (!remove.has(id)) return;
          monetExpertContribution(contrib, u, g1, g2, t, Math.floor(id / E), id % E, experts, dims);
          for (let o = 0; o < d; o++) out[t * d + o] -= contrib[o];
        });
      }
    },
    steerNeuron: () => noSteer('monet'),
  };
}

/** The view of one layer, from the driver's saved state (the shapes each reference driver returns). */
function makeView(model: InterpModel, ctx: FfnLayerCtx, c: unknown, u: Float64Array, saved: unknown): FfnView {
  const l = ctx.layer;
  const units = model.units[l];
  const T = ctx.dims.T;
  const d = model.lm.cfg.d;
  switch (model.config.ffn) {
    case 'dense':
      return neuronView(units, T, d, (saved as DenseFfnSaved).h, ctx.params('mlp.')['down_proj.weight']);
    case 'topk': {
      const s = saved as { topk: true; s: TopkFfnSaved } | { topk: false; s: DenseFfnSaved };
      return neuronView(units, T, d, s.topk ? s.s.a : s.s.h, ctx.params('mlp.')['down_proj.weight']);
    }
    case 'smoe':
      return smoeView(units, T, d, c as SmoeConfig, saved as SmoeSaved);
    case 'peer': {
      const s = saved as { kind: 'peer'; saved: PeerSaved } | { kind: 'dense'; saved: DenseFfnSaved };
      const p = ctx.params('mlp.');
      if (s.kind === 'dense') return neuronView(units, T, d, s.saved.h, p['down_proj.weight']);
      return peerView(units, T, d, c as PeerLmConfig, s.saved, p.w_up);
    }
    case 'monet':
      return monetView(units, T, d, c as MonetLmConfig, ctx, u);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading and running.

export interface InterpModel {
  dir: string;
  config: ModelConfig;
  units: LayerUnits[]; // (L)
  lm: LmModel; // eval mode
  params: Params;
  state: Params; // reference names (no `state.` prefix)
}

/** Build an eval-mode model from a config and float64 parameters (tests use this with random weights). */
export function makeInterpModel(
  dir: string,
  config: ModelConfig,
  params: Params,
  state: Params,
  alpha = 0,
): InterpModel {
  const units = layerUnits(config);
  const raw: Record<string, unknown> = { ...config, mode: 'eval' };
  delete raw.tokenizer;
  delete raw.monet_ts_format;
  // TopK: α is the end-of-training value (0 once annealing is over); the checkpoint's config.alpha is the start.
  if (config.ffn === 'topk') raw.alpha = alpha;
  const lm = buildLm(raw, `${dir}/config.json`);
  return { dir, config, units, lm, params, state };
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

/** The LM with the hook spliced in after every FFN forward (the same driver otherwise). */
function hookedLm(model: InterpModel, hooks: FfnHooks | null): LmModel {
  if (!hooks) return model.lm;
  const base = model.lm.driver;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const driver: FfnDriver<any, any> = {
    ...base,
    forward(c, ctx, u, out) {
      const saved = base.forward(c, ctx, u, out);
      hooks.afterFfn(makeView(model, ctx, c, u, saved), out, u);
      return saved;
    },
  };
  return { ...model.lm, driver };
}

export interface ForwardResult {
  logits: Float64Array; // (B, S, V)
  /** (B, S−1) next-token cross-entropy at each position s (predicting token s+1). */
  nll: Float64Array;
}

/** Eval-mode forward of (B, S) tokens with optional hooks; returns logits and per-position next-token losses. */
export function interpForward(
  model: InterpModel,
  tokens: Int32Array,
  B: number,
  S: number,
  hooks: FfnHooks | null = null,
): ForwardResult {
  const fwd = lmForward(hookedLm(model, hooks), model.params, tokens, B, S, model.state);
  const V = model.lm.cfg.V;
  const nll = new Float64Array(B * (S - 1)); // (B, S−1)
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S - 1; s++) {
      const row = fwd.logits.subarray((b * S + s) * V, (b * S + s + 1) * V); // (V)
      let mx = -Infinity;
      for (let v = 0; v < V; v++) if (row[v] > mx) mx = row[v];
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - mx);
      nll[b * (S - 1) + s] = mx + Math.log(z) - row[tokens[b * S + s + 1]];
    }
  }
  return { logits: fwd.logits, nll };
}

/** Hooks that remove the given units (per layer) from the model's output. */
export function maskHooks(remove: ReadonlyArray<ReadonlySet<number>>): FfnHooks {
  return {
    afterFfn(view, out) {
      const r = remove[view.units.layer];
      if (r && r.size > 0) view.removeUnits(out, r);
    },
  };
}

/** Hooks that add δ to neuron n of layer l at every position. */
export function steerHooks(layer: number, neuron: number, delta: number): FfnHooks {
  return {
    afterFfn(view, out) {
      // δ = 0 still goes through steerNeuron (adding 0·down[:, n]), so the no-op test exercises the real path.
      if (view.units.layer === layer) view.steerNeuron(out, neuron, delta);
    },
  };
}
