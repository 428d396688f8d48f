// A second pass for unit pages: what a unit's page shows beyond the first pass's counts and top positions.
//
//   histogram   the distribution of its scores over every position where it fires (equal bins from the firing
//               threshold to its largest score)
//   contexts    its top N positions, each with the unit's score at EVERY position of that window, so a page can
//               shade each byte of the context by how strongly the unit fired there
//   logit effect  which next bytes the unit promotes and suppresses, by direct logit attribution: its mean
//               contribution to the residual stream at its top-M positions (summed over the layers of its group),
//               through the final RMSNorm's weights and the unembedding. The norm's 1/rms factor (the same for
//               every byte at a position) and the layers after the unit are left out, so this reads the unit's
//               direct path to the logits only; bytes are ranked by the effect minus its mean over the vocabulary.
//
// Sizes: W windows of S tokens, U units of a group, N contexts per unit, M positions kept per unit, d model dim,
// V vocabulary.

import type { Collected } from './collect.ts';
import { forEachBatch } from './collect.ts';
import { modelParam, type InterpModel } from './model.ts';
import { FIRE_THRESHOLD } from './units.ts';

export interface UnitContext {
  pos: number; // global position w·S + s
  score: number;
  window: number; // w
  /** (S) the unit's score at every position of the window (0 where it did not score). */
  scores: Float32Array;
}

export interface UnitDetail {
  /** counts (bins) of its firing scores over equal bins [lo, hi]. */
  hist: { lo: number; hi: number; counts: Int32Array };
  contexts: UnitContext[];
  /** (V) direct logit effect of its mean contribution, minus its mean over the vocabulary; null when it never fired. */
  logitEffect: Float64Array | null;
}

/** Per group, per unit: the detail of every unit that fired at least once (undefined otherwise). */
export function unitDetails(
  model: InterpModel,
  c: Collected,
  nContexts: number,
  bins = 30,
): Array<Array<UnitDetail | undefined>> {
  const { S } = c.text;
  const d = model.lm.d;
  const V = model.lm.V;
  const groups = c.groups.map((st) => {
    const g = st.group;
    const theta = FIRE_THRESHOLD[g.kind];
    const detail: Array<UnitDetail | undefined> = new Array(g.count);
    const needs = new Map<number, Map<number, Float32Array>>(); // window → unit → (S) scores
    const topAt = new Map<number, number[]>(); // position → units whose top-M list holds it
    const sums = new Map<number, Float64Array>(); // unit → (d) Σ contribution over its top-M positions
    for (let u = 0; u < g.count; u++) {
      const heap = st.top[u];
      if (!heap) continue;
      const kept = heap.sorted();
      const contexts = kept.slice(0, nContexts).map((k) => {
        const w = Math.floor(k.pos / S);
        const byUnit = needs.get(w) ?? new Map<number, Float32Array>();
        needs.set(w, byUnit);
        const scores = byUnit.get(u) ?? new Float32Array(S);
        byUnit.set(u, scores);
        return { pos: k.pos, score: k.score, window: w, scores };
      });
      for (const k of kept) {
        const list = topAt.get(k.pos);
        if (list) list.push(u);
        else topAt.set(k.pos, [u]);
      }
      sums.set(u, new Float64Array(d));
      const hi = Math.max(st.maxScore[u], theta + 1e-12);
      detail[u] = { hist: { lo: theta, hi, counts: new Int32Array(bins) }, contexts, logitEffect: null };
    }
    return { st, theta, detail, needs, topAt, sums };
  });
  forEachBatch(model, c.text, (w0) => ({
    atSite(view) {
      const gr = groups[view.group.group];
      // the unit's contribution at its top positions, in every layer of its group
      for (let t = 0; t < view.T; t++) {
        const units = gr.topAt.get(w0 * S + t);
        if (units) for (const u of units) view.addContribution(gr.sums.get(u)!, t, u);
      }
      if (!view.first) return;
      view.visitScores((t, u, score) => {
        const w = w0 + Math.floor(t / S);
        const scores = gr.needs.get(w)?.get(u);
        if (scores) scores[t % S] = score;
        const det = gr.detail[u];
        if (det && score > gr.theta) {
          const { lo, hi, counts } = det.hist;
          counts[Math.min(bins - 1, Math.floor(((score - lo) / (hi - lo)) * bins))]++;
        }
      });
    },
  }));
  // Direct logit attribution of the mean top-position contribution.
  const headName = model.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const head = modelParam(model, headName); // (V, d)
  const normW = modelParam(model, 'model.norm.weight'); // (d)
  for (const gr of groups) {
    for (const [u, sum] of gr.sums) {
      const det = gr.detail[u]!;
      const n = gr.st.top[u]!.size;
      const eff = new Float64Array(V); // (V)
      let mean = 0;
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let o = 0; o < d; o++) s += head[v * d + o] * normW[o] * (sum[o] / n);
        eff[v] = s;
        mean += s / V;
      }
      for (let v = 0; v < V; v++) eff[v] -= mean;
      det.logitEffect = eff;
    }
  }
  return groups.map((g) => g.detail);
}

/** The k bytes with the largest (promoted) and smallest (suppressed) logit effect, among `among` when given. */
export function topEffects(
  effect: Float64Array,
  k: number,
  among?: ReadonlySet<number>,
): { promoted: Array<[number, number]>; suppressed: Array<[number, number]> } {
  const ids = [...effect.keys()].filter((v) => !among || among.has(v)).sort((a, b) => effect[b] - effect[a] || a - b);
  return {
    promoted: ids.slice(0, k).map((v) => [v, effect[v]]),
    suppressed: ids
      .slice(-k)
      .reverse()
      .map((v) => [v, effect[v]]),
  };
}
