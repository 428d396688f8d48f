// Text generation: repeatedly ask the engine for the next-token logits (eval mode), pick a token, append. Device
// engines keep a KV cache (src/layers/lm-decode.ts): the prompt runs once, then each new token alone. Once the
// context reaches the model's positions, and on the reference engine, each token recomputes the cropped context
// with the training forward instead.
//
// Picking a token from logits z (V), in the order Hugging Face's generate applies the same options:
//   1. repetition penalty p (1 = off): for every id already in the context, z ← z / p where z > 0, z·p otherwise;
//   2. temperature t: t = 0 is greedy (argmax, the lowest id on ties) and ends here; else z ← z / t;
//   3. top-k (0 = off): keep the k largest z (ties at the boundary: the lower ids);
//   4. top-p (1 = off): keep the most probable ids, in descending order, until their softmax mass reaches p (the id
//      that crosses p is kept; at least one id always is);
//   5. draw from the softmax of what is left (r = u·Σp, walking the candidates until r < 0).

import type { Decoder, Engine } from './engine.ts';
import type { Tokenizer } from './tokenizer.ts';
import { Rng } from './rng.ts';

export interface SamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
}

export const GREEDY: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1 };

/** The next token id by the options above; `context` is what the repetition penalty looks at. */
export function pickToken(
  logits: ArrayLike<number>,
  o: SamplingOptions,
  rng: Rng,
  context: ArrayLike<number> = [],
): number {
  const V = logits.length;
  const z = Float64Array.from(logits); // (V,)
  if (o.repetitionPenalty !== 1) {
    const seen = new Set<number>();
    for (let i = 0; i < context.length; i++) seen.add(context[i]);
    for (const id of seen)
      if (id >= 0 && id < V) z[id] = z[id] > 0 ? z[id] / o.repetitionPenalty : z[id] * o.repetitionPenalty;
  }
  let best = 0;
  for (let i = 1; i < V; i++) if (z[i] > z[best]) best = i;
  if (o.temperature === 0) return best;
  // Candidates in id order when nothing is cut (the draw then walks ids 0..V−1), else by descending z (stable: ties
  // keep the lower id first).
  const cut = (o.topK > 0 && o.topK < V) || o.topP < 1;
  let order = Array.from({ length: V }, (_, i) => i);
  if (cut) order.sort((a, b) => z[b] - z[a] || a - b);
  if (o.topK > 0 && o.topK < V) order = order.slice(0, o.topK);
  const mx = z[best];
  const p = order.map((i) => Math.exp((z[i] - mx) / o.temperature));
  let total = p.reduce((s, v) => s + v, 0);
  if (o.topP < 1) {
    let mass = 0;
    let keep = 0;
    while (keep < p.length && mass < o.topP * total) mass += p[keep++];
    order = order.slice(0, Math.max(1, keep));
    p.length = order.length;
    total = p.reduce((s, v) => s + v, 0);
  }
  let r = rng.next() * total;
  for (let j = 0; j < order.length; j++) {
    r -= p[j];
    if (r < 0) return order[j];
  }
  return order[order.length - 1];
}

/** Index drawn from softmax(logits / temperature); temperature 0 = argmax (lowest index on ties). */
export function sampleLogits(logits: ArrayLike<number>, temperature: number, rng: Rng): number {
  return pickToken(logits, { ...GREEDY, temperature }, rng);
}

export interface GenerateIdsOptions {
  tokens: number; // at most this many new ids
  sampling: SamplingOptions;
  seed: number;
  stop: readonly number[]; // ids that end generation (EOS); the stop id is returned as the last id
  alpha: number; // TopK α (the end-of-training value)
  maxContext: number; // crop the context to the model's positions
  /** Each new id as it is picked; a promise returned is awaited (a page repaints there). */
  onId?: (id: number) => void | Promise<void>;
  /** Asked after each id: true ends generation there. */
  shouldStop?: () => boolean;
  /** false: recompute the context for every token even where a KV cache is available (tests compare both). */
  kvCache?: boolean;
}

/**
 * Logits that are not finite would sample token 0 (a NUL byte) again and again without an error: the weights
 * overflow float32 (finite but huge values, e.g. a forged 3e38) or the model is damaged.
 */
function checkLogits(logits: ArrayLike<number>, generated: number): void {
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i]))
      throw new Error(
        `the model's next-token logits are not finite (${logits[i]} for id ${i}, after ${generated} generated ` +
          'tokens): its weights overflow float32, or the checkpoint is damaged or forged',
      );
  }
}

/**
 * Tokens per piece of a prompt fed to a KV-cache decoder: a piece's temporaries (a released model's feed-forward
 * keeps several (tokens, 4096) float32 tensors per layer) rather than the whole prompt's; the attention of each
 * piece still sees every earlier position.
 */
export const PROMPT_PIECE = 128;

/** Feed `ids` to the decoder PROMPT_PIECE at a time; the logits after the last one. */
export async function appendPrompt(dec: Decoder, ids: readonly number[]): Promise<Float32Array> {
  let logits: Float32Array | null = null;
  for (let at = 0; at < ids.length; at += PROMPT_PIECE)
    logits = await dec.append(Int32Array.from(ids.slice(at, at + PROMPT_PIECE)));
  if (!logits) throw new Error('appendPrompt: an empty prompt (at least one id is needed)');
  return logits;
}

/** Generated ids after `prompt` (the prompt itself not included). */
export async function generateIds(engine: Engine, prompt: readonly number[], o: GenerateIdsOptions): Promise<number[]> {
  const rng = new Rng(o.seed);
  const ids = prompt.slice(-o.maxContext);
  const out: number[] = [];
  const size = Math.min(o.maxContext, ids.length + o.tokens);
  const dec = o.kvCache !== false && engine.openDecoder ? engine.openDecoder(size, o.alpha) : null;
  try {
    let logits: Float32Array | Float64Array | null = dec ? await appendPrompt(dec, ids) : null;
    for (let n = 0; n < o.tokens; n++) {
      const ctx = Int32Array.from(ids.slice(-o.maxContext));
      logits ??= await engine.nextLogits(ctx, o.alpha);
      checkLogits(logits, n);
      const next = pickToken(logits, o.sampling, rng, ctx);
      ids.push(next);
      out.push(next);
      await o.onId?.(next);
      if (o.stop.includes(next) || n === o.tokens - 1 || o.shouldStop?.()) break;
      logits = dec && dec.length < dec.size ? await dec.append(Int32Array.of(next)) : null;
    }
  } finally {
    dec?.dispose();
  }
  return out;
}

/**
 * Text of a growing id list, handed out piece by piece: a SentencePiece token decodes differently alone than in
 * context (its leading space, a UTF-8 character split over byte tokens), so each step decodes everything generated
 * and hands out what was added; a trailing U+FFFD (an incomplete character) waits for the next id.
 */
export class TextStream {
  private ids: number[] = [];
  private sent = '';
  constructor(private tok: Tokenizer) {}
  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids);
    if (text.endsWith('\uFFFD') || !text.startsWith(this.sent)) return '';
    const piece = text.slice(this.sent.length);
    this.sent = text;
    return piece;
  }
  /** What is left (an incomplete character at the very end). */
  flush(): string {
    const text = this.tok.decode(this.ids);
    const piece = text.startsWith(this.sent) ? text.slice(this.sent.length) : '';
    this.sent = text;
    return piece;
  }
}

export interface GenerateOptions {
  prompt: string;
  tokens: number;
  temperature: number;
  seed: number;
  alpha: number; // TopK α (the end-of-training value)
  maxContext: number; // crop the context to the model's positions
  onToken?: (text: string) => void;
  /** top-k, top-p, repetition penalty (off when absent) */
  sampling?: Partial<SamplingOptions>;
}

export async function generate(engine: Engine, tok: Tokenizer, o: GenerateOptions): Promise<string> {
  // Every backend's forward also computes a next-token loss, which needs at least two positions: a shorter prompt
  // is preceded by newlines, which is what precedes every document in training (data.ts DOC_SEPARATOR).
  const ids = Array.from(tok.encode(o.prompt));
  while (ids.length < 2) ids.unshift(...tok.encode('\n'));
  const out = await generateIds(engine, ids, {
    tokens: o.tokens,
    sampling: { ...GREEDY, ...o.sampling, temperature: o.temperature },
    seed: o.seed,
    stop: [],
    alpha: o.alpha,
    maxContext: o.maxContext,
    onId: (id) => o.onToken?.(tok.decode([id])),
  });
  return tok.decode(out);
}
