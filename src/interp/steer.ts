// Neuron steering (TopK LM paper; SPEC §4.3): add a constant δ to neuron n of layer l at every position while
// sampling, and compare the text with the unsteered sample drawn with the same seed.
//
// The neuron's activation enters the model only through down_proj, so "y_n ← y_n + δ" is the same as adding
// δ·down[:, n] to the layer's FFN output at every token (model.ts steerNeuron). Generation recomputes the whole
// (cropped) context for every new token — no KV cache — so every token of the context is steered, as in the paper.
//
// Sizes: V vocabulary, S context length (≤ max_position_embeddings).

import { Rng } from '../train/rng.ts';
import { sampleLogits } from '../train/sample.ts';
import { summarizeLayer, type Collected, type UnitSummary } from './collect.ts';
import { showToken } from './data.ts';
import { interpForward, steerHooks, type InterpModel } from './model.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

export interface SampleOptions {
  prompt: string;
  tokens: number;
  temperature: number;
  seed: number;
}

/** One neuron pushed by δ at every position; null = unsteered. */
export interface Steer {
  layer: number;
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
  const V = model.lm.cfg.V;
  const maxCtx = model.lm.cfg.maxPos;
  const rng = new Rng(o.seed);
  const ids = Array.from(enc.encode(o.prompt));
  // The forward computes a next-token loss, which needs two positions; documents are preceded by newlines in training.
  while (ids.length < 2) ids.unshift(10);
  const out: number[] = [];
  const hooks = steer ? steerHooks(steer.layer, steer.neuron, steer.delta) : null;
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

/** Sample text from the model with neuron (layer, neuron) raised by delta at every position (delta 0 = unsteered). */
export function sampleSteered(
  model: InterpModel,
  layer: number,
  neuron: number,
  delta: number,
  o: SampleOptions,
): string {
  let out: readonly number[] = [];
  for (const ids of steeredTokens(model, { layer, neuron, delta }, o)) out = ids;
  return decodeTokens(out);
}

/** A neuron to steer with how we named it. */
export interface SteerTarget {
  layer: number;
  neuron: number;
  name: string; // e.g. "'t' (62%), 'T' · words the, that · pos at"
  why: string; // which criterion picked it
  summary: UnitSummary;
}

export function neuronName(s: UnitSummary): string {
  const share = (n: number) => `${Math.round((100 * n) / Math.max(1, s.kept))}%`;
  const toks = s.topTokens
    .slice(0, 3)
    .map(([b, n]) => `'${showToken(b)}' ${share(n)}`)
    .join(', ');
  const words = s.topWords
    .slice(0, 3)
    .map(([w]) => w)
    .join(', ');
  const tags = s.topTags
    .slice(0, 2)
    .map(([t]) => t)
    .join(', ');
  return `${toks}${words ? ` · words: ${words}` : ''}${tags ? ` · POS: ${tags}` : ''}`;
}

/**
 * Pick neurons automatically: the lowest token-entropy neuron, then (if the corpus has tags) the lowest POS-entropy
 * neuron among the rest, then further lowest token-entropy ones, until `count`. Only neurons (dense/TopK layers)
 * that fired at least `minFires` times and whose most frequent token is not whitespace are candidates.
 */
export function pickSteerTargets(c: Collected, count: number, minFires: number): SteerTarget[] {
  const cands: UnitSummary[] = [];
  for (const st of c.layers) {
    if (st.units.kind !== 'topk' && st.units.kind !== 'dense') continue;
    cands.push(...summarizeLayer(c, st.units.layer, minFires).measured);
  }
  if (cands.length === 0)
    throw new Error(
      `inspect steer: no neuron fired at least ${minFires} times; this needs a dense or TopK model (or a lower --min-fires)`,
    );
  // Prefer TopK layers when the model has them (the paper steers TopK neurons). Skip neurons whose most frequent
  // token is whitespace: at byte level those are word-boundary detectors, which have entropy 0 and no concept.
  const hasTopk = cands.some((s) => c.layers[s.layer].units.kind === 'topk');
  const isSpace = (s: UnitSummary) => s.topTokens.length > 0 && [9, 10, 13, 32].includes(s.topTokens[0][0]);
  let pool = hasTopk ? cands.filter((s) => c.layers[s.layer].units.kind === 'topk') : cands;
  if (pool.some((s) => !isSpace(s))) pool = pool.filter((s) => !isSpace(s));
  const byTok = [...pool].sort((a, b) => a.tokenEntropy - b.tokenEntropy || b.fires - a.fires);
  const out: SteerTarget[] = [];
  const used = new Set<string>();
  const add = (s: UnitSummary, why: string) => {
    used.add(`${s.layer}/${s.unit}`);
    out.push({ layer: s.layer, neuron: s.unit, name: neuronName(s), why, summary: s });
  };
  add(byTok[0], `lowest token entropy (${byTok[0].tokenEntropy.toFixed(2)} bits)`);
  if (count > 1 && c.text.tagSet) {
    const byTag = [...pool]
      .filter((s) => !used.has(`${s.layer}/${s.unit}`))
      .sort((a, b) => a.tagEntropy! - b.tagEntropy! || b.fires - a.fires);
    if (byTag.length) add(byTag[0], `lowest POS entropy among the rest (${byTag[0].tagEntropy!.toFixed(2)} bits)`);
  }
  for (const s of byTok) {
    if (out.length >= count) break;
    if (!used.has(`${s.layer}/${s.unit}`)) add(s, `next-lowest token entropy (${s.tokenEntropy.toFixed(2)} bits)`);
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
