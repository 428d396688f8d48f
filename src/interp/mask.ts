// Domain / language masking (Monet paper §5.1–5.2, at our scale), with a noise floor.
//
// For each label g (a Brown genre, or a language of the code corpus):
//   1. units specific to g, chosen on windows of the TRAINING split, in every unit group, by one of two rules:
//      ratio   (the paper's, default) mean score on g ≥ factor (2) × mean score on every other label (stats.ts
//              labelSpecificUnits): routing statistics only;
//      effect  the K units per group whose removal, to first order, raises g's loss most beyond its mean rise on
//              the other labels, among the units whose mean score on g is ≥ factor (1.25) × that on every other
//              label (attribution.ts effectSpecificUnits; K = ⌈U/16⌉ unless given);
//   2. remove exactly those units' contributions (views.ts: out −= g_ij·E_ij for Monet, in every layer of the router
//      group; w_e·E_e for SMoE experts; h_n·down[:, n] for neurons), nothing else;
//   3. measure the next-token loss on VALIDATION windows of every label and compare with the unmasked model.
// The row of g reports the raw ΔL on g itself, the mean ΔL over the other labels, and their ratio.
//
// A ratio alone overclaims: 0.00028 / 0.000003 is a "ratio of 90" on no effect at all. So every row also removes
// the SAME number of units per group drawn at random, several times, and measures ΔL on g for each draw, under two
// null models:
//   uniform   drawn uniformly from the units that scored on the selection windows;
//   matched   each selected unit replaced by a random unselected unit of about the same overall usage (one of the
//             six nearest by mean score over all labels), so the draw is as heavily used as the selected set.
// A null's noise floor is the largest |ΔL on g| of its draws, and its ratio is ΔL on g / the draws' mean ΔL on g. The
// uniform null answers "does masking these units hurt g more than masking as many units at all?" (the label's units
// may be rare ones that carry little); the matched null answers "does it hurt g more than masking as many units that
// are as busy?" — specificity with usage held equal. A row is 'no effect' under a null when ΔL on g ≤ its floor.
//
// Label lean (how much a unit prefers one label) gets a floor too: the labels of the selection windows are shuffled
// (each label keeps its number of windows) and the largest lean of any measured unit is recorded; a lean at or
// below that is what chance produces with this many windows.
//
// Sizes: G labels, U units per group, R random draws.

import { Rng } from '../../reference/rng.ts';
import { effectSpecificUnits, unitEffects, type UnitEffects } from './attribution.ts';
import { collect, lossByLabel, meanScores, summarizeGroup, type Collected } from './collect.ts';
import { windowsOfLabel, type AnalysisText } from './data.ts';
import { interpForward, maskHooks, windowsPerForward, type InterpModel } from './model.ts';
import { labelSpecificUnits, sampleWithoutReplacement, shuffled, unitLeans } from './stats.ts';
import { groupName } from './units.ts';

/** ΔL on the label when random masks of the same size replace the selected units (several draws). */
export interface NullResult {
  draws: number[]; // ΔL on the label for each draw
  mean: number;
  /** Largest |ΔL| of the draws: at or below it, masking the selected units had no effect beyond this null. */
  floor: number;
  /** Mean share of the label's routing weight the drawn units carry (compare MaskRow.massShare). */
  share: number;
  /** deltaTarget / mean, or null when ΔL ≤ floor or mean ≤ 0. */
  ratio: number | null;
  verdict: MaskVerdict;
}

export interface MaskRow {
  label: string;
  unitsPerGroup: number[]; // (groups) masked units in each unit group
  deltaTarget: number; // ΔL on the label's own validation windows (nats/token)
  deltaOthers: number; // mean ΔL over the other labels
  /** deltaTarget / deltaOthers, or null when either is ≤ 0. */
  ratioOthers: number | null;
  /**
   * Share of the label's routing weight (Σ over all units of their mean score on the label, selection windows) that
   * the masked units carry: whether they are heavily or lightly used on their label.
   */
  massShare: number;
  uniform: NullResult;
  matched: NullResult;
  /** The largest lean of any unit towards this label: max over units of mean(label) / max mean(other labels). */
  maxLean: number;
  deltas: number[]; // (G) ΔL on every label
}

/**
 * Under one null: none: nothing passed the selection rule. no-effect: ΔL on the label ≤ the null's floor.
 * specific: above the floor and both ratios (others, this null) ≥ 3 — the target under the uniform null.
 * weak: above the floor, but a ratio < 3 or undefined.
 */
export type MaskVerdict = 'none' | 'no-effect' | 'weak' | 'specific';

/** How the units of a label are chosen: the paper's routing ratio, or the first-order effect on the loss. */
export type MaskSelect = 'ratio' | 'effect';

export interface MaskResult {
  kind: string; // the model's ffn kind
  select: MaskSelect;
  factor: number; // routing lean a unit needs: the ratio rule's factor, the effect rule's candidate filter
  /** The effect rule's K per unit group (null for the ratio rule). */
  perGroup: number[] | null;
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

/** Mean loss per label (G) over `text` with the given units removed (one set per unit group). */
export function maskedLossByLabel(
  model: InterpModel,
  text: AnalysisText,
  remove: ReadonlyArray<ReadonlySet<number>>,
): Float64Array {
  const { S, windows: W } = text;
  const nll = new Float64Array(W * (S - 1));
  const hooks = maskHooks(remove);
  const per = windowsPerForward(model, S);
  for (let w0 = 0; w0 < W; w0 += per) {
    const B = Math.min(per, W - w0);
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
  select?: MaskSelect; // selection rule ('ratio')
  factor?: number; // routing lean: ratio rule (2), effect rule's candidates (1.25)
  /** effect rule: units per group (default ⌈U/16⌉ of each group). */
  units?: number;
  /** effect rule: unit effects already computed on `selection` (attribution.ts unitEffects), else computed here. */
  effects?: UnitEffects;
  draws?: number; // random masks per label (5)
  minFires?: number; // units measured for the chance lean (20)
  seed?: number;
  log?: (line: string) => void;
}

/** A null's summary of its draws, and the row's verdict under it (see MaskVerdict). */
export function nullResult(
  draws: number[],
  shares: number[],
  row: { units: number; deltaTarget: number; ratioOthers: number | null },
): NullResult {
  const mean = draws.length ? draws.reduce((a, b) => a + b, 0) / draws.length : 0;
  const floor = draws.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
  const above = row.units > 0 && row.deltaTarget > floor;
  const ratio = above && mean > 0 ? row.deltaTarget / mean : null;
  let verdict: MaskVerdict = 'weak';
  if (row.units === 0) verdict = 'none';
  else if (!above) verdict = 'no-effect';
  else if ((row.ratioOthers ?? 0) >= 3 && (ratio ?? 0) >= 3) verdict = 'specific';
  const share = shares.length ? shares.reduce((a, b) => a + b, 0) / shares.length : 0;
  return { draws, mean, floor, share, ratio, verdict };
}

/**
 * `count` units of a group, each drawn among the (up to) six unselected units nearest in overall usage to one of
 * the selected units: a random mask as busy as the selected one.
 */
export function matchedDraw(
  selected: ReadonlySet<number>,
  pool: Int32Array,
  usage: Float64Array,
  rng: Rng,
): Set<number> {
  const free = Array.from(pool)
    .filter((u) => !selected.has(u))
    .sort((a, b) => usage[a] - usage[b] || a - b);
  const out = new Set<number>();
  for (const u of selected) {
    let lo = 0;
    let hi = free.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (usage[free[mid]] < usage[u]) lo = mid + 1;
      else hi = mid;
    }
    const near: number[] = [];
    for (let k = lo - 1, j = lo; near.length < 6 && (k >= 0 || j < free.length); ) {
      const left = k >= 0 ? Math.abs(usage[free[k]] - usage[u]) : Infinity;
      const right = j < free.length ? Math.abs(usage[free[j]] - usage[u]) : Infinity;
      const pick = left <= right ? free[k--] : free[j++];
      if (!out.has(pick)) near.push(pick);
    }
    if (near.length) out.add(near[rng.int(near.length)]);
  }
  return out;
}

export function maskExperiment(
  model: InterpModel,
  selection: AnalysisText, // training-split windows
  evaluation: AnalysisText, // validation-split windows
  opts: MaskOptions = {},
): MaskResult {
  const { select = 'ratio', draws = 5, minFires = 20, seed = 1, log } = opts;
  const factor = opts.factor ?? (select === 'effect' ? 1.25 : 2);
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
  let specific: Array<Array<Set<number>>>;
  let perGroup: number[] | null = null;
  if (select === 'effect') {
    const k = sel.groups.map((st) => opts.units ?? Math.ceil(st.group.count / 16));
    for (const [gi, st] of sel.groups.entries())
      if (k[gi] > st.group.count)
        throw new Error(`inspect mask: --units ${k[gi]} exceeds the ${st.group.count} units of group ${gi}`);
    perGroup = k;
    const { effect } = opts.effects ?? unitEffects(model, selection, log);
    const leaning = specificUnitsByLabel(sel, factor); // candidates: units leaning ≥ factor towards the label
    specific = labels.map((_, g) =>
      sel.groups.map((st, gi) => new Set(effectSpecificUnits(effect[gi], st.group.count, G, g, k[gi], leaning[g][gi]))),
    );
  } else specific = specificUnitsByLabel(sel, factor);
  const lean = maxLeanByLabel(sel);
  const chanceLean = chanceLeanByLabel(sel, minFires, 20);
  const pools = scoringUnits(sel);
  const means = sel.groups.map((_, gi) => meanScores(sel, gi));
  /** Share of label g's total mean score that the units in `sets` (one per group) carry. */
  const share = (g: number, sets: ReadonlyArray<ReadonlySet<number>>) => {
    let part = 0;
    let all = 0;
    for (const [gi, m] of means.entries()) {
      for (let u = 0; u < sel.groups[gi].group.count; u++) {
        const v = m[u * G + g];
        all += v;
        if (sets[gi].has(u)) part += v;
      }
    }
    return all > 0 ? part / all : 0;
  };
  log?.(`baseline loss on ${evaluation.windows} validation windows …`);
  const base = lossByLabel(evaluation, collect(model, evaluation, 1).nll);
  // overall usage of every unit: its mean score over all positions of the selection windows
  const usage = means.map((m, gi) => {
    const U = sel.groups[gi].group.count;
    return Float64Array.from({ length: U }, (_, u) => {
      let sum = 0;
      for (let g = 0; g < G; g++) sum += m[u * G + g] * sel.labelPositions[g];
      return sum / sel.positions;
    });
  });
  const rng = new Rng(seed);
  const rows: MaskRow[] = [];
  for (let g = 0; g < G; g++) {
    const remove = specific[g];
    const unitsPerGroup = remove.map((s) => s.size);
    const units = unitsPerGroup.reduce((a, b) => a + b, 0);
    let deltas = new Array<number>(G).fill(0);
    const uniform = { draws: [] as number[], shares: [] as number[] };
    const matched = { draws: [] as number[], shares: [] as number[] };
    if (units > 0) {
      log?.(
        `masking ${units} units specific to '${labels[g]}', then ${draws} + ${draws} random masks of the same size …`,
      );
      const masked = maskedLossByLabel(model, evaluation, remove);
      deltas = Array.from(masked, (v, h) => v - base[h]);
      for (let r = 0; r < draws; r++) {
        const u = unitsPerGroup.map((n, gi) => new Set(sampleWithoutReplacement(pools[gi], n, rng)));
        uniform.draws.push(maskedLossOnLabel(model, evaluation, g, u) - base[g]);
        uniform.shares.push(share(g, u));
        const m = remove.map((set, gi) => matchedDraw(set, pools[gi], usage[gi], rng));
        matched.draws.push(maskedLossOnLabel(model, evaluation, g, m) - base[g]);
        matched.shares.push(share(g, m));
      }
    }
    let others = 0;
    for (let h = 0; h < G; h++) if (h !== g) others += deltas[h] / (G - 1);
    const ratioOthers = deltas[g] > 0 && others > 0 ? deltas[g] / others : null;
    const row = { units, deltaTarget: deltas[g], ratioOthers };
    rows.push({
      label: labels[g],
      unitsPerGroup,
      deltaTarget: deltas[g],
      deltaOthers: others,
      ratioOthers,
      massShare: share(g, remove),
      uniform: nullResult(uniform.draws, uniform.shares, row),
      matched: nullResult(matched.draws, matched.shares, row),
      maxLean: lean[g],
      deltas,
    });
  }
  return {
    kind: model.config.ffn,
    select,
    factor,
    perGroup,
    draws,
    labels,
    groups: sel.groups.map((st) => groupName(st.group)),
    baseLoss: Array.from(base),
    rows,
    chanceLean,
    selectionWindows: selection.windows,
    evalWindows: evaluation.windows,
    engine: sel.engine,
  };
}
