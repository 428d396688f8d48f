// Text generation from a trained model: repeatedly ask the engine for the next-token logits (eval mode), sample with
// a temperature, append. No KV cache: each token recomputes the (cropped) context, which keeps every backend's
// forward the same function that training uses.

import type { Engine } from './engine.ts';
import type { Tokenizer } from './tokenizer.ts';
import { Rng } from './rng.ts';

/** Index drawn from softmax(logits / temperature); temperature 0 = argmax (lowest index on ties). */
export function sampleLogits(logits: ArrayLike<number>, temperature: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  const mx = logits[best];
  const p = new Float64Array(logits.length); // (V,)
  let z = 0;
  for (let i = 0; i < logits.length; i++) {
    p[i] = Math.exp((logits[i] - mx) / temperature);
    z += p[i];
  }
  let r = rng.next() * z;
  for (let i = 0; i < p.length; i++) {
    r -= p[i];
    if (r < 0) return i;
  }
  return p.length - 1;
}

export interface GenerateOptions {
  prompt: string;
  tokens: number;
  temperature: number;
  seed: number;
  alpha: number; // TopK α (the end-of-training value)
  maxContext: number; // crop the context to the model's positions
  onToken?: (text: string) => void;
}

export async function generate(engine: Engine, tok: Tokenizer, o: GenerateOptions): Promise<string> {
  const rng = new Rng(o.seed);
  // Every backend's forward also computes a next-token loss, which needs at least two positions: a shorter prompt
  // is preceded by newlines, which is what precedes every document in training (data.ts DOC_SEPARATOR).
  const ids = Array.from(tok.encode(o.prompt));
  while (ids.length < 2) ids.unshift(...tok.encode('\n'));
  const out: number[] = [];
  for (let n = 0; n < o.tokens; n++) {
    const ctx = Int32Array.from(ids.slice(-o.maxContext));
    const logits = await engine.nextLogits(ctx, o.alpha);
    const next = sampleLogits(logits, o.temperature, rng);
    ids.push(next);
    out.push(next);
    o.onToken?.(tok.decode([next]));
  }
  return tok.decode(out);
}
