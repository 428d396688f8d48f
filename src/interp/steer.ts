// Neuron steering (TopK LM paper): add a constant δ to neuron n of layer l at every position while sampling, and
// compare the text with the unsteered sample drawn with the same seed.
//
// The neuron's activation enters the model only through down_proj, so "y_n ← y_n + δ" is the same as adding
// δ·down[:, n] to the layer's FFN output at every token (views.ts steerNeuron); for a TopK 'hidden' dimension δ is
// added to the residual stream itself. Generation recomputes the whole (cropped) context for every new token — no
// KV cache — so every token of the context is steered, as in the paper.
//
// Honesty rules: a neuron that never fired on the analysis text has largest activation 0, so the automatic
// δ = scale × largest activation is 0 and nothing would change: that is refused, not run silently. A δ given
// explicitly on such a neuron runs with a warning. A sweep over several δ shows where the text starts to change,
// and each steered sample is compared with the unsteered one byte by byte (firstDivergence).
//
// Sizes: V vocabulary, S context length (≤ max_position_embeddings).

import { Rng } from '../train/rng.ts';
import { sampleLogits } from '../train/sample.ts';
import { summarizeGroup, type Collected, type UnitSummary } from './collect.ts';
import { showTokenOf, type TokenVocab } from './data.ts';
import { interpForward, steerHooks, type InterpModel } from './model.ts';
import { isNeuronKind } from './units.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

export interface SampleOptions {
  prompt: string;
  tokens: number;
  temperature: number;
  seed: number;
}

/** One neuron (of a neuron unit group) pushed by δ at every position; null = unsteered. */
export interface Steer {
  group: number;
  neuron: number;
  delta: number;
}

/**
 * The sampling loop shared by the CLI (sampleSteered) and the playground (which consumes it asynchronously): yields
 * the generated token ids so far after each new token.
 */
export function* steeredTokens(
  model: InterpModel,
  steer: Steer | null,
  o: SampleOptions,
): Generator<readonly number[]> {
  const V = model.lm.V;
  const maxCtx = model.lm.maxPos;
  const rng = new Rng(o.seed);
  const ids = Array.from(enc.encode(o.prompt));
  // The forward computes a next-token loss, which needs two positions; documents are preceded by newlines in training.
  while (ids.length < 2) ids.unshift(10);
  const out: number[] = [];
  const hooks = steer ? steerHooks(steer.group, steer.neuron, steer.delta) : null;
  for (let n = 0; n < o.tokens; n++) {
    const ctx = Int32Array.from(ids.slice(-maxCtx));
    const S = ctx.length;
    const { logits } = interpForward(model, ctx, 1, S, hooks);
    const next = sampleLogits(logits.subarray((S - 1) * V, S * V), o.temperature, rng);
    ids.push(next);
    out.push(next);
    yield out;
  }
}

/** Bytes → text, invalid UTF-8 shown as U+FFFD (a byte model can stop mid-character). */
export function decodeTokens(ids: readonly number[]): string {
  return dec.decode(Uint8Array.from(ids));
}

/** Sample text from the model with `steer` applied at every position (null = unsteered). */
export function sampleSteered(model: InterpModel, steer: Steer | null, o: SampleOptions): string {
  let out: readonly number[] = [];
  for (const ids of steeredTokens(model, steer, o)) out = ids;
  return decodeTokens(out);
}

/** Index of the first character where `steered` differs from `base` (their common prefix length); null if equal. */
export function firstDivergence(base: string, steered: string): number | null {
  const a = [...base];
  const b = [...steered];
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

/**
 * The δ to use for a target: `delta` when given; else scale × its largest observed activation. Refuses a neuron
 * that never fired when δ would come from its activations (δ = 0: a silent no-op); returns a warning when δ was
 * given for such a neuron.
 */
export function steerDelta(
  t: SteerTarget,
  groupName: string,
  positions: number,
  o: { delta?: number; scale: number },
): { delta: number; warning: string | null } {
  const silent = t.summary.fires === 0 || !(t.summary.maxScore > 0);
  const what =
    `${groupName} neuron ${t.neuron} never fired on the ${positions.toLocaleString('en-US')} analysed positions ` +
    `(largest activation ${t.summary.maxScore})`;
  if (o.delta !== undefined) {
    return {
      delta: o.delta,
      warning: silent
        ? `WARNING: ${what}; δ = ${o.delta} was given, so it is applied anyway, but nothing shows what this ` +
          'neuron stands for'
        : null,
    };
  }
  if (silent)
    throw new Error(
      `${what}, so δ = ${o.scale} × its largest activation would be 0 and the steered text would equal the ` +
        'unsteered one; pick a neuron that fires (monet inspect units lists them) or give --delta',
    );
  return { delta: o.scale * t.summary.maxScore, warning: null };
}

/** A neuron to steer with how we named it. */
export interface SteerTarget {
  group: number;
  neuron: number;
  name: string; // e.g. "'t' (62%), 'T' · words the, that · pos at"
  why: string; // which criterion picked it
  summary: UnitSummary;
}

/**
 * What a unit fires on, from its top-M positions, with its density so the shares are not read as "always": e.g.
 * "top 100: 'n' 100%, 'N' … · words: … · POS: … · fires at 58.0% of positions".
 */
export function neuronName(s: UnitSummary, text: { vocab?: TokenVocab } = {}): string {
  const share = (n: number) => `${Math.round((100 * n) / Math.max(1, s.kept))}%`;
  const toks = s.topTokens
    .slice(0, 3)
    .map(([b, n]) => `'${showTokenOf(text, b)}' ${share(n)}`)
    .join(', ');
  const words = s.topWords
    .slice(0, 3)
    .map(([w]) => w)
    .join(', ');
  const tags = s.topTags
    .slice(0, 2)
    .map(([t]) => t)
    .join(', ');
  const density = `fires at ${(100 * s.freq).toFixed(s.freq < 0.001 ? 3 : 1)}% of positions`;
  return `top ${s.kept}: ${toks}${words ? ` · words: ${words}` : ''}${tags ? ` · POS: ${tags}` : ''} · ${density}`;
}

/**
 * Pick neurons automatically: the lowest token-entropy neuron, then (if the corpus has tags) the lowest POS-entropy
 * neuron among the rest, then further lowest token-entropy ones, until `count`. Only neurons (dense/TopK layers)
 * that fired at least `minFires` times and whose most frequent token is not whitespace are candidates.
 */
export function pickSteerTargets(c: Collected, count: number, minFires: number): SteerTarget[] {
  const cands: UnitSummary[] = [];
  for (const st of c.groups) {
    if (!isNeuronKind(st.group.kind)) continue;
    cands.push(...summarizeGroup(c, st.group.group, minFires).measured);
  }
  if (cands.length === 0)
    throw new Error(
      `inspect steer: no neuron fired at least ${minFires} times; this needs a dense or TopK model ` +
        '(or a lower --min-fires)',
    );
  // Prefer TopK layers when the model has them (the paper steers TopK neurons). Skip neurons whose most frequent
  // token is whitespace: at byte level those are word-boundary detectors, which have entropy 0 and no concept.
  const isTopk = (s: UnitSummary) => c.groups[s.group].group.kind !== 'dense';
  const hasTopk = cands.some(isTopk);
  const isSpace = (s: UnitSummary) => s.topTokens.length > 0 && [9, 10, 13, 32].includes(s.topTokens[0][0]);
  let pool = hasTopk ? cands.filter(isTopk) : cands;
  if (pool.some((s) => !isSpace(s))) pool = pool.filter((s) => !isSpace(s));
  const byTok = [...pool].sort((a, b) => a.tokenEntropy - b.tokenEntropy || b.fires - a.fires);
  const out: SteerTarget[] = [];
  const used = new Set<string>();
  const add = (s: UnitSummary, why: string) => {
    used.add(`${s.group}/${s.unit}`);
    out.push({ group: s.group, neuron: s.unit, name: neuronName(s), why, summary: s });
  };
  add(byTok[0], `lowest token entropy (${byTok[0].tokenEntropy.toFixed(2)} bits)`);
  if (count > 1 && c.text.tagSet) {
    const byTag = [...pool]
      .filter((s) => !used.has(`${s.group}/${s.unit}`))
      .sort((a, b) => a.tagEntropy! - b.tagEntropy! || b.fires - a.fires);
    if (byTag.length) add(byTag[0], `lowest POS entropy among the rest (${byTag[0].tagEntropy!.toFixed(2)} bits)`);
  }
  for (const s of byTok) {
    if (out.length >= count) break;
    if (!used.has(`${s.group}/${s.unit}`)) add(s, `next-lowest token entropy (${s.tokenEntropy.toFixed(2)} bits)`);
  }
  return out.slice(0, count);
}

/** Share of the bytes of `text` that are among the neuron's top tokens (how much the steered concept shows up). */
export function topTokenShare(text: string, s: UnitSummary, n = 3): number {
  const bytes = enc.encode(text);
  if (bytes.length === 0) return 0;
  const top = new Set(s.topTokens.slice(0, n).map(([b]) => b));
  let hit = 0;
  for (const b of bytes) if (top.has(b)) hit++;
  return hit / bytes.length;
}
