// Domain / language masking (Monet paper §5.1–5.2, at our scale), with a noise floor.
//
// For each label g (a Brown genre, or a language of the code corpus):
//   1. units specific to g: mean score on g ≥ factor (2) × mean score on every other label (stats.ts
//      labelSpecificUnits), measured on windows of the TRAINING split, in every unit group;
//   2. remove exactly those units' contributions (views.ts: out −= g_ij·E_ij for Monet, in every layer of the router
//      group; w_e·E_e for SMoE experts; h_n·down[:, n] for neurons), nothing else;
//   3. measure the next-token loss on VALIDATION windows of every label and compare with the unmasked model.
// The row of g reports the raw ΔL on g itself, the mean ΔL over the other labels, and their ratio.
//
// A ratio alone overclaims: 0.00028 / 0.000003 is a "ratio of 90" on no effect at all. So every row also removes
// the SAME number of units per group drawn at random (from the units that scored on the selection windows), several
// times, and measures ΔL on g for each draw. The noise floor of the row is the largest |ΔL on g| of those draws: a
// ΔL on g at or below it is "no effect", whatever the ratio. The row's second ratio compares ΔL on g with the mean
// ΔL on g of the random masks.
//
// Label lean (how much a unit prefers one label) gets a floor too: the labels of the selection windows are shuffled
// (each label keeps its number of windows) and the largest lean of any measured unit is recorded; a lean at or
// below that is what chance produces with this many windows.
//
// Sizes: G labels, U units per group, R random draws.

import { Rng } from '../../reference/rng.ts';
import { collect, lossByLabel, meanScores, summarizeGroup, type Collected } from './collect.ts';
import type { AnalysisText } from './data.ts';
import { interpForward, maskHooks, type InterpModel } from './model.ts';
import { labelSpecificUnits, sampleWithoutReplacement, shuffled, unitLeans } from './stats.ts';

export interface MaskRow {
  label: string;
  unitsPerGroup: number[]; // (groups) masked units in each unit group
  deltaTarget: number; // ΔL on the label's own validation windows (nats/token)
  deltaOthers: number; // mean ΔL over the other labels
  /** ΔL on this label for each random mask of the same size per group (R draws). */
  randomTarget: number[];
  /** Largest |ΔL on this label| among the random draws: at or below it, masking had no effect. */
  noiseFloor: number;
  /** deltaTarget / deltaOthers, or null when nothing was masked, ΔL ≤ floor, or the others' mean ΔL ≤ 0. */
  ratioOthers: number | null;
  /** deltaTarget / mean(randomTarget), null on the same conditions (and a random mean ≤ 0). */
  ratioRandom: number | null;
  verdict: MaskVerdict;
  /** The largest lean of any unit towards this label: max over units of mean(label) / max mean(other labels). */
  maxLean: number;
  deltas: number[]; // (G) ΔL on every label
}

/**
 * none: nothing passed the selection rule. no-effect: ΔL on the label ≤ the noise floor. specific: ΔL above the
 * floor and both ratios ≥ 3 (the target). weak: above the floor, but a ratio < 3 or undefined.
 */
export type MaskVerdict = 'none' | 'no-effect' | 'weak' | 'specific';

export interface MaskResult {
  kind: string; // the model's ffn kind
  factor: number;
  draws: number;
  labels: string[];
  groups: string[]; // group names, for the per-group counts
  baseLoss: number[]; // (G) validation loss per label, unmasked
  rows: MaskRow[];
  /** Per label, the largest lean a measured unit reaches when the selection windows' labels are shuffled. */
  chanceLean: number[];
  selectionWindows: number;
  evalWindows: number;
  engine: string;
}

/** The windows of `text` whose label is g, as an AnalysisText of their own. */
export function windowsOfLabel(text: AnalysisText, g: number): AnalysisText {
  const keep: number[] = [];
  for (let w = 0; w < text.windows; w++) if (text.windowLabel[w] === g) keep.push(w);
  const S = text.S;
  const tokens = new Int32Array(keep.length * S);
  const tokenTags = new Uint16Array(keep.length * S);
  keep.forEach((w, i) => {
    tokens.set(text.tokens.subarray(w * S, (w + 1) * S), i * S);
    tokenTags.set(text.tokenTags.subarray(w * S, (w + 1) * S), i * S);
  });
  return {
    ...text,
    windows: keep.length,
    tokens,
    tokenTags,
    windowLabel: Int32Array.from(keep, (w) => text.windowLabel[w]),
    windowDoc: keep.map((w) => text.windowDoc[w]),
  };
}

/** Mean loss per label (G) over `text` with the given units removed (one set per unit group). */
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

/** Mean loss on label g alone (its windows only) with the given units removed. */
function maskedLossOnLabel(
  model: InterpModel,
  text: AnalysisText,
  g: number,
  remove: ReadonlyArray<ReadonlySet<number>>,
): number {
  return maskedLossByLabel(model, windowsOfLabel(text, g), remove)[g];
}

/**
 * Per group and label, the largest lean of any unit towards the label (Infinity if a unit scores on that label
 * only), over the units in `only` when given.
 */
export function maxLeanByGroup(sel: Collected, windowLabel?: Int32Array, only?: Array<Set<number>>): number[][] {
  const G = sel.text.labels.length;
  return sel.groups.map((st, gi) => {
    const out = new Array<number>(G).fill(0);
    const { lean, label } = unitLeans(meanScores(sel, gi, windowLabel), st.group.count, G);
    for (let u = 0; u < st.group.count; u++) {
      if (label[u] < 0 || (only && !only[gi].has(u))) continue;
      out[label[u]] = Math.max(out[label[u]], lean[u]);
    }
    return out;
  });
}

/** For each label, the largest lean of any unit of any group towards it. */
export function maxLeanByLabel(sel: Collected, windowLabel?: Int32Array, only?: Array<Set<number>>): number[] {
  const byGroup = maxLeanByGroup(sel, windowLabel, only);
  return sel.text.labels.map((_, g) => Math.max(0, ...byGroup.map((row) => row[g])));
}

/**
 * Chance lean per group and label: shuffle the windows' labels `draws` times (each label keeps its number of
 * windows) and record the largest lean of any unit that fired at least `minFires` times. Deterministic (seeded).
 */
export function chanceLean(sel: Collected, minFires: number, draws: number, seed = 7): number[][] {
  const G = sel.text.labels.length;
  const measured = sel.groups.map((_, gi) => new Set(summarizeGroup(sel, gi, minFires).measured.map((s) => s.unit)));
  const rng = new Rng(seed);
  const out = sel.groups.map(() => new Array<number>(G).fill(0));
  for (let r = 0; r < draws; r++) {
    const lean = maxLeanByGroup(sel, shuffled(sel.text.windowLabel, rng), measured);
    for (const [gi, row] of lean.entries()) for (let g = 0; g < G; g++) out[gi][g] = Math.max(out[gi][g], row[g]);
  }
  return out;
}

/** Chance lean per label (the largest over the groups). */
export function chanceLeanByLabel(sel: Collected, minFires: number, draws: number, seed = 7): number[] {
  const byGroup = chanceLean(sel, minFires, draws, seed);
  return sel.text.labels.map((_, g) => Math.max(0, ...byGroup.map((row) => row[g])));
}

/** The units of every group specific to each label: (G) × (groups) sets. */
export function specificUnitsByLabel(sel: Collected, factor: number): Array<Array<Set<number>>> {
  const G = sel.text.labels.length;
  const out: Array<Array<Set<number>>> = [];
  for (let g = 0; g < G; g++) {
    out.push(
      sel.groups.map((st, gi) => new Set(labelSpecificUnits(meanScores(sel, gi), st.group.count, G, g, factor))),
    );
  }
  return out;
}

/** Units of each group that scored somewhere on the selection windows: the pool random masks draw from. */
function scoringUnits(sel: Collected): Int32Array[] {
  return sel.groups.map((st) => Int32Array.from(new Set(st.windowSums.unit)).sort());
}

export interface MaskOptions {
  factor?: number; // selection factor (2)
  draws?: number; // random masks per label (5)
  minFires?: number; // units measured for the chance lean (20)
  seed?: number;
  log?: (line: string) => void;
}

/** Classify a row (see MaskVerdict). */
export function maskVerdict(
  row: Pick<MaskRow, 'unitsPerGroup' | 'deltaTarget' | 'noiseFloor'> & {
    ratioOthers: number | null;
    ratioRandom: number | null;
  },
): MaskVerdict {
  if (row.unitsPerGroup.every((n) => n === 0)) return 'none';
  if (!(row.deltaTarget > row.noiseFloor)) return 'no-effect';
  return (row.ratioOthers ?? 0) >= 3 && (row.ratioRandom ?? 0) >= 3 ? 'specific' : 'weak';
}

export function maskExperiment(
  model: InterpModel,
  selection: AnalysisText, // training-split windows
  evaluation: AnalysisText, // validation-split windows
  opts: MaskOptions = {},
): MaskResult {
  const { factor = 2, draws = 5, minFires = 20, seed = 1, log } = opts;
  if (selection.labels.join('\u0000') !== evaluation.labels.join('\u0000')) {
    throw new Error(
      `inspect mask: the training and validation splits have different labels ` +
        `(${selection.labels.join(', ')} vs ${evaluation.labels.join(', ')})`,
    );
  }
  const labels = evaluation.labels;
  const G = labels.length;
  log?.(`selecting units on ${selection.windows} training windows …`);
  const sel = collect(model, selection, 1);
  const specific = specificUnitsByLabel(sel, factor);
  const lean = maxLeanByLabel(sel);
  const chanceLean = chanceLeanByLabel(sel, minFires, 20);
  const pools = scoringUnits(sel);
  log?.(`baseline loss on ${evaluation.windows} validation windows …`);
  const base = lossByLabel(evaluation, collect(model, evaluation, 1).nll);
  const rng = new Rng(seed);
  const rows: MaskRow[] = [];
  for (let g = 0; g < G; g++) {
    const remove = specific[g];
    const unitsPerGroup = remove.map((s) => s.size);
    const total = unitsPerGroup.reduce((a, b) => a + b, 0);
    let deltas = new Array<number>(G).fill(0);
    const randomTarget: number[] = [];
    if (total > 0) {
      log?.(`masking ${total} units specific to '${labels[g]}', then ${draws} random masks of the same size …`);
      const masked = maskedLossByLabel(model, evaluation, remove);
      deltas = Array.from(masked, (v, h) => v - base[h]);
      for (let r = 0; r < draws; r++) {
        const rand = unitsPerGroup.map((n, gi) => new Set(sampleWithoutReplacement(pools[gi], n, rng)));
        randomTarget.push(maskedLossOnLabel(model, evaluation, g, rand) - base[g]);
      }
    }
    let others = 0;
    for (let h = 0; h < G; h++) if (h !== g) others += deltas[h] / (G - 1);
    const noiseFloor = randomTarget.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    const randomMean = randomTarget.length ? randomTarget.reduce((a, b) => a + b, 0) / randomTarget.length : 0;
    const above = total > 0 && deltas[g] > noiseFloor;
    const ratioOthers = above && others > 0 ? deltas[g] / others : null;
    const ratioRandom = above && randomMean > 0 ? deltas[g] / randomMean : null;
    const row = {
      label: labels[g],
      unitsPerGroup,
      deltaTarget: deltas[g],
      deltaOthers: others,
      randomTarget,
      noiseFloor,
      ratioOthers,
      ratioRandom,
      maxLean: lean[g],
      deltas,
    };
    rows.push({ ...row, verdict: maskVerdict(row) });
  }
  return {
    kind: model.config.ffn,
    factor,
    draws,
    labels,
    groups: sel.groups.map((st) => st.group.layers.join('+')),
    baseLoss: Array.from(base),
    rows,
    chanceLean,
    selectionWindows: selection.windows,
    evalWindows: evaluation.windows,
    engine: sel.engine,
  };
}
