// What the "Look inside" panel computes, without any DOM: a model in float64 (the reference LM in eval mode, through
// the interpretability module src/interp/), Monet's routing weights per character, TopK neuron activations, the top
// contexts of experts and neurons on held-out text, and sampling with a neuron pushed.
//
// Sizes: T characters analysed (≤ max_position_embeddings), L layers, H expert heads, E experts per side (Monet,
// N = E² composite experts), F hidden neurons (TopK / dense), W analysis windows of S_w bytes, M contexts kept per
// unit.

import { lmForward } from '../reference/lm.ts';
import type { CorpusDoc } from '../src/train/corpus.ts';
import { collect, summarizeUnit, type Collected, type UnitSummary } from '../src/interp/collect.ts';
import { buildWindows, contextOf, type AnalysisText } from '../src/interp/data.ts';
import { interpForward, makeInterpModel, type InterpModel, type UnitHooks } from '../src/interp/model.ts';
import { groupOfLayer, isNeuronKind, type UnitGroup } from '../src/interp/units.ts';
import { decodeTokens, steeredTokens, type SampleOptions, type Steer } from '../src/interp/steer.ts';

import type { LoadedModel } from '../src/interp/load-bytes.ts';

export { modelFromFiles, type LoadedModel } from '../src/interp/load-bytes.ts';

export function interpModelOf(m: LoadedModel): InterpModel {
  // TopK α = 0: the end-of-training value (pure TopK); the playground trains with α = 0 throughout.
  return makeInterpModel(m.label, m.config, m.params, m.state, 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Monet routing per character.

export interface LayerRouting {
  layer: number;
  T: number;
  H: number;
  E: number;
  g1: Float64Array; // (T, H, E) router 1 weights: bottom halves i
  g2: Float64Array; // (T, H, E) router 2 weights: top halves j
}

/** Eval-mode forward of one sequence, keeping every layer's (g1, g2) (its group's router, reference/lm-monet.ts). */
export function monetRouting(model: InterpModel, tokens: Int32Array): LayerRouting[] {
  if (model.config.ffn !== 'monet')
    throw new Error(`monetRouting: the model's ffn is '${model.config.ffn}', not 'monet'`);
  const S = tokens.length;
  const out: LayerRouting[] = [];
  const H = model.config.moe_heads!;
  const E = model.config.moe_experts!;
  const pass = lmForward(model.lm, model.params, tokens, 1, S, model.state).saved.ffn;
  if (pass.kind !== 'monet') throw new Error(`monetRouting: expected a Monet feed-forward pass, found '${pass.kind}'`);
  for (let l = 0; l < model.lm.L; l++) {
    const r = pass.router(l); // the routing weights layer l uses (its group's router)
    out[l] = { layer: l, T: S, H, E, g1: r.g1.slice(), g2: r.g2.slice() };
  }
  return out;
}

/** g_ij = Σ_h g1[t,h,i]·g2[t,h,j] of token t, out (E, E) row i, column j. */
export function compositeGrid(r: LayerRouting, t: number): Float64Array {
  const { H, E } = r;
  const out = new Float64Array(E * E); // (E, E)
  for (let h = 0; h < H; h++) {
    const o = (t * H + h) * E;
    for (let i = 0; i < E; i++) {
      const a = r.g1[o + i];
      if (a === 0) continue;
      for (let j = 0; j < E; j++) out[i * E + j] += a * r.g2[o + j];
    }
  }
  return out;
}

/** The n largest composite weights of a grid (ties → lower id, the package's tie rule). */
export function topComposite(
  grid: Float64Array,
  E: number,
  n: number,
): Array<{ id: number; i: number; j: number; score: number }> {
  const ids = [...grid.keys()].filter((id) => grid[id] > 0);
  ids.sort((a, b) => grid[b] - grid[a] || a - b);
  return ids.slice(0, n).map((id) => ({ id, i: Math.floor(id / E), j: id % E, score: grid[id] }));
}

// ---------------------------------------------------------------------------------------------------------------
// Neuron activations (TopK and dense layers; experts of SMoE/PEER/Monet are not neurons).

/** The units of layer `layer` (its unit group: the layer itself, or the Monet router group that covers it). */
export function unitsOfLayer(model: InterpModel, layer: number): UnitGroup {
  return groupOfLayer(model.groups, layer);
}

/** Per layer, the hidden activations (T, F) the interpretability hook reports (TopK: zero outside the top k). */
export function neuronActivations(model: InterpModel, tokens: Int32Array): Array<Float64Array | null> {
  const S = tokens.length;
  const L = model.config.num_hidden_layers;
  const acts: Array<Float64Array | null> = Array.from({ length: L }, (_, l) => {
    const g = unitsOfLayer(model, l);
    return isNeuronKind(g.kind) ? new Float64Array(S * g.count) : null;
  });
  const hooks: UnitHooks = {
    atSite(view) {
      const a = acts[view.layer];
      if (!a) return;
      const F = view.group.count;
      view.visitScores((t, n, score) => {
        a[t * F + n] = score;
      });
    },
  };
  interpForward(model, tokens, 1, S, hooks);
  return acts;
}

// ---------------------------------------------------------------------------------------------------------------
// Top contexts: where, in held-out text, each expert or neuron fires most strongly.

export interface CorpusSlice {
  name: string;
  train: Array<{ id: string; genre: string; text: string }>;
  validation: Array<{ id: string; genre: string; text: string }>;
}

const enc = new TextEncoder();

/** Analysis windows from the validation documents (one per genre, evenly spaced windows; no POS tags here). */
export function analysisText(corpus: CorpusSlice, S: number, perGenre: number): AnalysisText {
  const docs: CorpusDoc[] = corpus.validation.map((d) => ({
    ...d,
    byteTags: new Uint16Array(enc.encode(d.text).length),
  }));
  return buildWindows(docs, (d) => d.genre, [''], S, perGenre, false);
}

export interface Contexts {
  collected: Collected;
  summary(layer: number, unit: number): UnitSummary | null;
  /** The unit's M strongest positions as [before, token, after] with their scores. */
  contexts(
    layer: number,
    unit: number,
    radius: number,
  ): Array<{ score: number; parts: [string, string, string]; label: string }>;
}

export function collectContexts(model: InterpModel, text: AnalysisText, M: number): Contexts {
  const c = collect(model, text, M);
  const group = (layer: number) => unitsOfLayer(model, layer).group;
  return {
    collected: c,
    summary: (layer, unit) => (c.groups[group(layer)].top[unit] ? summarizeUnit(c, group(layer), unit) : null),
    contexts(layer, unit, radius) {
      const h = c.groups[group(layer)].top[unit];
      if (!h) return [];
      return h.sorted().map((k) => {
        const w = Math.floor(k.pos / text.S);
        const s = k.pos % text.S;
        return { score: k.score, parts: contextOf(text, w, s, radius), label: text.labels[text.windowLabel[w]] };
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Generation, optionally with one neuron pushed by δ at every position (TopK LM paper's steering): the CLI's sampling
// loop (src/interp/steer.ts steeredTokens), consumed asynchronously so the page stays responsive and shows text as
// it grows.

export interface GenerateOptions extends SampleOptions {
  steer: Steer | null;
  onText?: (text: string) => void;
  shouldStop?: () => boolean;
}

export async function generate(model: InterpModel, o: GenerateOptions): Promise<string> {
  let out: readonly number[] = [];
  let n = 0;
  for (const ids of steeredTokens(model, o.steer, o)) {
    out = ids;
    o.onText?.(decodeTokens(out));
    if (o.shouldStop?.()) break;
    if (++n % 4 === 0) await new Promise((r) => setTimeout(r, 0));
  }
  return decodeTokens(out);
}
