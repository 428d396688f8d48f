// One pass of a model over analysis windows, collecting for every unit of every unit group: how often it fires (per
// label too), its summed score per window (→ mean score per label, and label shuffles for a noise floor), its
// largest score, and its M highest-scoring positions (for top contexts and entropies).
//
// Sizes: W windows of S tokens, P = W·S positions, U units of a group, G labels, M positions kept per unit.
//
// Nothing of size U × P is stored: each position's scores stream through per-unit accumulators. Per-window sums are
// kept sparsely (only the (unit, window) pairs where the unit scored), so a group of 262,144 Monet experts costs
// memory in proportion to what fired, not U × W.
//
// Scores of a Monet router group are read once, at the group's first layer: the other layers of the group reuse
// the same routing, so their scores are the same numbers.

import type { AnalysisText } from './data.ts';
import { wordAt } from './data.ts';
import { interpForward, windowsPerForward, type InterpModel, type UnitHooks } from './model.ts';
import { countValues, entropyBits, TopHeap, topCounts } from './stats.ts';
import { FIRE_THRESHOLD, type UnitGroup } from './units.ts';

/** Σ max(score, 0) of a unit over one window, for the (unit, window) pairs where it was positive. */
export interface WindowSums {
  unit: Int32Array; // (n)
  window: Int32Array; // (n)
  sum: Float64Array; // (n)
}

export interface GroupStats {
  group: UnitGroup;
  fires: Float64Array; // (U) positions where score > FIRE_THRESHOLD[kind]
  firesByLabel: Float64Array; // (U, G) the same, per label
  maxScore: Float64Array; // (U) largest score seen (0 when never positive)
  windowSums: WindowSums;
  /** (U) the M highest firing scores and their positions (global index w·S + s); absent when it never fired. */
  top: Array<TopHeap | undefined>;
}

export interface Collected {
  text: AnalysisText;
  positions: number; // P = W·S
  labelPositions: Float64Array; // (G) positions per label
  groups: GroupStats[];
  nll: Float64Array; // (W, S−1) per-position next-token loss of the unmodified model
  M: number;
  /** Which forward produced the numbers ('reference (float64)', 'wasm (simd), float32'). */
  engine: string;
}

/** Grows a WindowSums log batch by batch. */
class WindowSumLog {
  private unit: number[] = [];
  private window: number[] = [];
  private sum: number[] = [];
  private open = new Map<number, number>(); // unit·W + window → index in the log, for the current batch
  constructor(private readonly W: number) {}
  add(u: number, w: number, v: number): void {
    const key = u * this.W + w;
    const at = this.open.get(key);
    if (at !== undefined) {
      this.sum[at] += v;
      return;
    }
    this.open.set(key, this.sum.length);
    this.unit.push(u);
    this.window.push(w);
    this.sum.push(v);
  }
  /** Windows of the batch are complete: forget the index (keeps the map small). */
  endBatch(): void {
    this.open.clear();
  }
  done(): WindowSums {
    return { unit: Int32Array.from(this.unit), window: Int32Array.from(this.window), sum: Float64Array.from(this.sum) };
  }
}

/**
 * Runs `model` over all windows of `text` (batches of whole windows: windowsPerForward), calling `hooks` at every unit
 * site.
 */
export function forEachBatch(
  model: InterpModel,
  text: AnalysisText,
  makeHooks: (w0: number) => UnitHooks | null,
  onBatch?: (w0: number, B: number, nll: Float64Array) => void,
): void {
  const { S, windows: W } = text;
  const per = windowsPerForward(model, S);
  for (let w0 = 0; w0 < W; w0 += per) {
    const B = Math.min(per, W - w0);
    const r = interpForward(model, text.tokens.subarray(w0 * S, (w0 + B) * S), B, S, makeHooks(w0));
    onBatch?.(w0, B, r.nll);
  }
}

export function collect(
  model: InterpModel,
  text: AnalysisText,
  M: number,
  onProgress?: (done: number, total: number) => void,
): Collected {
  const { S, windows: W } = text;
  const G = text.labels.length;
  const logs = model.groups.map(() => new WindowSumLog(W));
  const groups = model.groups.map((g) => ({
    group: g,
    fires: new Float64Array(g.count),
    firesByLabel: new Float64Array(g.count * G),
    maxScore: new Float64Array(g.count),
    top: new Array<TopHeap | undefined>(g.count),
  }));
  const labelPositions = new Float64Array(G); // (G)
  for (let w = 0; w < W; w++) labelPositions[text.windowLabel[w]] += S;
  const nll = new Float64Array(W * (S - 1)); // (W, S−1)
  forEachBatch(
    model,
    text,
    (w0) => ({
      atSite(view) {
        if (!view.first) return;
        const st = groups[view.group.group];
        const log = logs[view.group.group];
        const theta = FIRE_THRESHOLD[view.group.kind];
        view.visitScores((t, u, score) => {
          const w = w0 + Math.floor(t / S);
          if (score > 0) log.add(u, w, score);
          if (score > st.maxScore[u]) st.maxScore[u] = score;
          if (score > theta) {
            st.fires[u]++;
            st.firesByLabel[u * G + text.windowLabel[w]]++;
            let h = st.top[u];
            if (!h) h = st.top[u] = new TopHeap(M);
            h.push(score, w0 * S + t);
          }
        });
      },
    }),
    (w0, B, batchNll) => {
      nll.set(batchNll, w0 * (S - 1));
      for (const log of logs) log.endBatch();
      onProgress?.(w0 + B, W);
    },
  );
  return {
    text,
    positions: W * S,
    labelPositions,
    groups: groups.map((g, i) => ({ ...g, windowSums: logs[i].done() })),
    nll,
    M,
    engine: model.fast ? `${model.fast.name}, float32` : 'reference (float64)',
  };
}

/**
 * (U, G) mean score of each unit on each label: Σ max(score, 0) over the label's positions / their number. With
 * `windowLabel` the windows are relabelled first (label shuffles for a noise floor).
 */
export function meanScores(c: Collected, group: number, windowLabel: Int32Array = c.text.windowLabel): Float64Array {
  const st = c.groups[group];
  const G = c.text.labels.length;
  const out = new Float64Array(st.group.count * G);
  const { unit, window, sum } = st.windowSums;
  for (let n = 0; n < sum.length; n++) out[unit[n] * G + windowLabel[window[n]]] += sum[n];
  for (let u = 0; u < st.group.count; u++) for (let g = 0; g < G; g++) out[u * G + g] /= c.labelPositions[g];
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
  group: number;
  unit: number;
  fires: number;
  /** Density: the share of ALL analysed positions where the unit fires (fires / P). */
  freq: number;
  kept: number; // positions in the top-M list (min(fires, M))
  /** Entropies (bits) of the token / POS-tag / label distribution over the kept positions. */
  tokenEntropy: number;
  tagEntropy: number | null; // null without tags
  labelEntropy: number;
  topTokens: Array<[number, number]>; // (byte, count) among the kept positions
  topWords: Array<[string, number]>;
  topTags: Array<[string, number]>;
  topLabels: Array<[string, number]>;
  meanTop: number; // mean score over the kept positions
  maxScore: number;
}

export function summarizeUnit(c: Collected, group: number, unit: number): UnitSummary {
  const st = c.groups[group];
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
    group,
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
    maxScore: st.maxScore[unit],
  };
}

export interface GroupSummary {
  measured: UnitSummary[];
  tooRare: number; // fired, but fewer than minFires times
  dead: number; // never fired on these windows
}

/** Summaries of every unit of a group that fired at least `minFires` times (rarer units say too little). */
export function summarizeGroup(c: Collected, group: number, minFires: number): GroupSummary {
  const st = c.groups[group];
  const measured: UnitSummary[] = [];
  let tooRare = 0;
  let dead = 0;
  for (let u = 0; u < st.group.count; u++) {
    const h = st.top[u];
    if (!h) {
      dead++;
      continue;
    }
    if (st.fires[u] < minFires) {
      tooRare++;
      continue;
    }
    measured.push(summarizeUnit(c, group, u));
  }
  return { measured, tooRare, dead };
}
