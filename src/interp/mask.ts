// Domain / language masking (Monet paper §5.1–5.2, at our scale).
//
// For each label g (a Brown genre, or a language of the code corpus):
//   1. units specific to g: mean score on g ≥ 2 × mean score on every other label (stats.ts labelSpecificUnits),
//      measured on windows of the TRAINING split, in every layer;
//   2. remove exactly those units' contributions from their layers' outputs (model.ts: out −= g_ij·E_ij for Monet,
//      w_e·E_e for SMoE experts, h_n·down[:, n] for neurons), nothing else;
//   3. measure the next-token loss on VALIDATION windows of every label, and compare with the unmasked model.
// The row of g reports ΔL on g itself against the mean ΔL over the other labels, and their ratio: a ratio far above
// 1 means the masked units held knowledge that matters for g and little else.
//
// Sizes: G labels, L layers, U units per layer.

import { collect, lossByLabel, meanScores, type Collected } from './collect.ts';
import type { AnalysisText } from './data.ts';
import { interpForward, maskHooks, type InterpModel } from './model.ts';
import { labelSpecificUnits } from './stats.ts';

export interface MaskRow {
  label: string;
  unitsPerLayer: number[]; // (L) masked units in each layer
  deltaTarget: number; // ΔL on the label's own validation windows (nats/token)
  deltaOthers: number; // mean ΔL over the other labels
  ratio: number | null; // deltaTarget / deltaOthers (null when deltaOthers ≤ 0 or nothing was masked)
  /** The largest lean of any unit towards this label: max over units of mean(label) / max mean(other labels). */
  maxLean: number;
  deltas: number[]; // (G) ΔL on every label
}

export interface MaskResult {
  kind: string; // the model's ffn kind
  factor: number;
  labels: string[];
  baseLoss: number[]; // (G) validation loss per label, unmasked
  rows: MaskRow[];
  selectionWindows: number;
  evalWindows: number;
}

/** Loss per label over `text` with the given units removed. */
export function maskedLossByLabel(
  model: InterpModel,
  text: AnalysisText,
  remove: ReadonlyArray<ReadonlySet<number>>,
): Float64Array {
  const { S, windows: W } = text;
  const nll = new Float64Array(W * (S - 1));
  const hooks = maskHooks(remove);
  for (let w0 = 0; w0 < W; w0 += 16) {
    const B = Math.min(16, W - w0);
    nll.set(interpForward(model, text.tokens.subarray(w0 * S, (w0 + B) * S), B, S, hooks).nll, w0 * (S - 1));
  }
  return lossByLabel(text, nll);
}

/** For each label, the largest mean(label) / max mean(other label) over all units of all layers (Infinity if a unit
 * fires only on that label). Shows how close a model comes to the selection factor. */
export function maxLeanByLabel(sel: Collected): number[] {
  const G = sel.text.labels.length;
  const out = new Array<number>(G).fill(0);
  sel.layers.forEach((st, l) => {
    const m = meanScores(sel, l);
    for (let u = 0; u < st.units.count; u++) {
      for (let g = 0; g < G; g++) {
        const own = m[u * G + g];
        if (!(own > 0)) continue;
        let other = 0;
        for (let h = 0; h < G; h++) if (h !== g) other = Math.max(other, m[u * G + h]);
        out[g] = Math.max(out[g], other > 0 ? own / other : Infinity);
      }
    }
  });
  return out;
}

/** The units of every layer specific to each label: (G) × (L) sets. */
export function specificUnitsByLabel(sel: Collected, factor: number): Array<Array<Set<number>>> {
  const G = sel.text.labels.length;
  const out: Array<Array<Set<number>>> = [];
  for (let g = 0; g < G; g++) {
    out.push(sel.layers.map((st, l) => new Set(labelSpecificUnits(meanScores(sel, l), st.units.count, G, g, factor))));
  }
  return out;
}

export function maskExperiment(
  model: InterpModel,
  selection: AnalysisText, // training-split windows
  evaluation: AnalysisText, // validation-split windows
  factor = 2,
  log?: (line: string) => void,
): MaskResult {
  if (selection.labels.join('\u0000') !== evaluation.labels.join('\u0000')) {
    throw new Error(
      `inspect mask: the training and validation splits have different labels (${selection.labels.join(', ')} vs ${evaluation.labels.join(', ')})`,
    );
  }
  const labels = evaluation.labels;
  const G = labels.length;
  log?.(`selecting units on ${selection.windows} training windows …`);
  const sel = collect(model, selection, 1);
  const specific = specificUnitsByLabel(sel, factor);
  const lean = maxLeanByLabel(sel);
  log?.(`baseline loss on ${evaluation.windows} validation windows …`);
  const base = lossByLabel(evaluation, collect(model, evaluation, 1).nll);
  const rows: MaskRow[] = [];
  for (let g = 0; g < G; g++) {
    const remove = specific[g];
    const unitsPerLayer = remove.map((s) => s.size);
    const total = unitsPerLayer.reduce((a, b) => a + b, 0);
    let deltas = new Array<number>(G).fill(0);
    if (total > 0) {
      log?.(`masking ${total} units specific to '${labels[g]}' …`);
      const masked = maskedLossByLabel(model, evaluation, remove);
      deltas = Array.from(masked, (v, h) => v - base[h]);
    }
    let others = 0;
    for (let h = 0; h < G; h++) if (h !== g) others += deltas[h] / (G - 1);
    rows.push({
      label: labels[g],
      unitsPerLayer,
      deltaTarget: deltas[g],
      deltaOthers: others,
      ratio: total > 0 && others > 0 ? deltas[g] / others : null,
      maxLean: lean[g],
      deltas,
    });
  }
  return {
    kind: model.config.ffn,
    factor,
    labels,
    baseLoss: Array.from(base),
    rows,
    selectionWindows: selection.windows,
    evalWindows: evaluation.windows,
  };
}
