// One pass of a model over analysis windows, collecting for every unit of every layer: how often it fires, its mean
// score on each label (genre / language), and its M highest-scoring positions (for top contexts and entropies).
//
// Sizes: W windows of S tokens, P = W·S positions, U units of a layer, G labels, M positions kept per unit.
//
// Nothing of size U × P is stored: each position's scores stream through per-unit accumulators.

import type { AnalysisText } from './data.ts';
import { wordAt } from './data.ts';
import { FIRE_THRESHOLD, interpForward, type FfnHooks, type InterpModel, type LayerUnits } from './model.ts';
import { countValues, entropyBits, TopHeap, topCounts } from './stats.ts';

export interface LayerStats {
  units: LayerUnits;
  fires: Float64Array; // (U) positions where score > FIRE_THRESHOLD[kind]
  /** (U, G) Σ of max(score, 0) over each label's positions; divide by labelPositions for the mean score. */
  sumByLabel: Float64Array;
  /** (U) the M highest firing scores and their positions (global index w·S + s); absent when it never fired. */
  top: Array<TopHeap | undefined>;
}

export interface Collected {
  text: AnalysisText;
  positions: number; // P = W·S
  labelPositions: Float64Array; // (G) positions per label
  layers: LayerStats[]; // (L)
  nll: Float64Array; // (W, S−1) per-position next-token loss of the unmodified model
  M: number;
}

/** Windows per forward pass: (B, S) batches of whole windows. */
const BATCH = 16;

export function collect(
  model: InterpModel,
  text: AnalysisText,
  M: number,
  onProgress?: (done: number, total: number) => void,
): Collected {
  const { S, windows: W } = text;
  const G = text.labels.length;
  const layers: LayerStats[] = model.units.map((u) => ({
    units: u,
    fires: new Float64Array(u.count),
    sumByLabel: new Float64Array(u.count * G),
    top: new Array<TopHeap | undefined>(u.count),
  }));
  const labelPositions = new Float64Array(G); // (G)
  for (let w = 0; w < W; w++) labelPositions[text.windowLabel[w]] += S;
  const nll = new Float64Array(W * (S - 1)); // (W, S−1)
  let w0 = 0; // first window of the current batch
  const hooks: FfnHooks = {
    afterFfn(view) {
      const st = layers[view.units.layer];
      const theta = FIRE_THRESHOLD[view.units.kind];
      view.visitScores((t, u, score) => {
        const pos = w0 * S + t;
        const g = text.windowLabel[w0 + Math.floor(t / S)];
        if (score > 0) st.sumByLabel[u * G + g] += score;
        if (score > theta) {
          st.fires[u]++;
          let h = st.top[u];
          if (!h) h = st.top[u] = new TopHeap(M);
          h.push(score, pos);
        }
      });
    },
  };
  for (w0 = 0; w0 < W; w0 += BATCH) {
    const B = Math.min(BATCH, W - w0);
    const r = interpForward(model, text.tokens.subarray(w0 * S, (w0 + B) * S), B, S, hooks);
    nll.set(r.nll, w0 * (S - 1));
    onProgress?.(w0 + B, W);
  }
  return { text, positions: W * S, labelPositions, layers, nll, M };
}

/** (U, G) mean score of each unit on each label. */
export function meanScores(c: Collected, layer: number): Float64Array {
  const st = c.layers[layer];
  const G = c.text.labels.length;
  const out = new Float64Array(st.sumByLabel.length);
  for (let u = 0; u < st.units.count; u++)
    for (let g = 0; g < G; g++) out[u * G + g] = st.sumByLabel[u * G + g] / c.labelPositions[g];
  return out;
}

/** Mean next-token loss per label (G) from per-position losses (W, S−1). */
export function lossByLabel(text: AnalysisText, nll: Float64Array): Float64Array {
  const G = text.labels.length;
  const sum = new Float64Array(G);
  const n = new Float64Array(G);
  const per = text.S - 1;
  for (let w = 0; w < text.windows; w++) {
    const g = text.windowLabel[w];
    for (let s = 0; s < per; s++) sum[g] += nll[w * per + s];
    n[g] += per;
  }
  for (let g = 0; g < G; g++) sum[g] /= n[g];
  return sum;
}

// ---------------------------------------------------------------------------------------------------------------
// Per-unit summaries.

export interface UnitSummary {
  layer: number;
  unit: number;
  fires: number;
  freq: number; // fires / P
  kept: number; // positions in the top-M list (min(fires, M))
  /** Entropies (bits) of the token / POS-tag / label distribution over the kept positions. */
  tokenEntropy: number;
  tagEntropy: number | null; // null without tags
  labelEntropy: number;
  topTokens: Array<[number, number]>; // (byte, count)
  topWords: Array<[string, number]>;
  topTags: Array<[string, number]>;
  topLabels: Array<[string, number]>;
  meanTop: number; // mean score over the kept positions
  maxScore: number;
}

export function summarizeUnit(c: Collected, layer: number, unit: number): UnitSummary {
  const st = c.layers[layer];
  const heap = st.top[unit];
  const kept = heap ? heap.sorted() : [];
  const S = c.text.S;
  const toks = kept.map((k) => c.text.tokens[k.pos]);
  const tags = kept.map((k) => c.text.tokenTags[k.pos]);
  const labels = kept.map((k) => c.text.windowLabel[Math.floor(k.pos / S)]);
  const words = kept.map((k) => wordAt(c.text, Math.floor(k.pos / S), k.pos % S)).filter((w) => w.length > 0);
  const tokC = countValues(toks);
  const tagC = countValues(tags);
  const labC = countValues(labels);
  const hasTags = c.text.tagSet !== null;
  return {
    layer,
    unit,
    fires: st.fires[unit],
    freq: st.fires[unit] / c.positions,
    kept: kept.length,
    tokenEntropy: entropyBits(tokC.values()),
    tagEntropy: hasTags ? entropyBits(tagC.values()) : null,
    labelEntropy: entropyBits(labC.values()),
    topTokens: topCounts(tokC, 5),
    topWords: topCounts(countValues(words), 5),
    topTags: hasTags ? topCounts(tagC, 3).map(([t, n]) => [c.text.tags[t] || '(space)', n] as [string, number]) : [],
    topLabels: topCounts(labC, 3).map(([g, n]) => [c.text.labels[g], n] as [string, number]),
    meanTop: kept.length ? kept.reduce((a, k) => a + k.score, 0) / kept.length : 0,
    maxScore: kept.length ? kept[0].score : 0,
  };
}

/** Summaries of every unit of a layer that kept at least `minFires` positions (rarer units say too little). */
export function summarizeLayer(
  c: Collected,
  layer: number,
  minFires: number,
): { measured: UnitSummary[]; tooRare: number; dead: number } {
  const st = c.layers[layer];
  const measured: UnitSummary[] = [];
  let tooRare = 0;
  let dead = 0;
  for (let u = 0; u < st.units.count; u++) {
    const h = st.top[u];
    if (!h) {
      dead++;
      continue;
    }
    if (h.size < minFires) {
      tooRare++;
      continue;
    }
    measured.push(summarizeUnit(c, layer, u));
  }
  return { measured, tooRare, dead };
}
