// From corpus documents to (B, S) batches of token ids.
//
// B batch size (sequences per step), S sequence length (tokens per sequence; S−1 next-token predictions each).
//
// Training batches are windows at uniformly random offsets of the concatenated training split, drawn with a seeded
// Rng whose state (plus the count of batches drawn) is the "data position" a resumed run restores. Validation uses a
// fixed set of evenly spaced, non-overlapping windows, so every evaluation of a run sees the same text.

import type { CorpusDoc } from './corpus.ts';
import type { Tokenizer } from './tokenizer.ts';
import { Rng, type RngState } from './rng.ts';

export const DOC_SEPARATOR = '\n\n';

export interface TokenStream {
  tokens: Int32Array; // (n,) token ids of all documents, DOC_SEPARATOR between them
  docStarts: Int32Array; // (docs,) offset of each document's first token
  docIds: string[]; // (docs,)
}

export function tokenizeDocs(docs: CorpusDoc[], tok: Tokenizer): TokenStream {
  const parts: Int32Array[] = [];
  const starts: number[] = [];
  const sep = tok.encode(DOC_SEPARATOR);
  let n = 0;
  for (const [i, d] of docs.entries()) {
    if (i > 0) {
      parts.push(sep);
      n += sep.length;
    }
    starts.push(n);
    const ids = tok.encode(d.text);
    parts.push(ids);
    n += ids.length;
  }
  const tokens = new Int32Array(n);
  let o = 0;
  for (const p of parts) {
    tokens.set(p, o);
    o += p.length;
  }
  return { tokens, docStarts: Int32Array.from(starts), docIds: docs.map((d) => d.id) };
}

export interface SamplerState {
  rng: RngState;
  batches: number; // batches drawn so far
}

export class BatchSampler {
  private rng: Rng;
  batches: number;

  constructor(
    readonly tokens: Int32Array, // (n,)
    readonly B: number,
    readonly S: number,
    seedOrState: number | SamplerState,
  ) {
    if (tokens.length < S + 1)
      throw new Error(`data: the training split has ${tokens.length} tokens; a sequence needs S = ${S} (+1)`);
    if (typeof seedOrState === 'number') {
      this.rng = new Rng(seedOrState);
      this.batches = 0;
    } else {
      this.rng = new Rng(seedOrState.rng);
      this.batches = seedOrState.batches;
    }
  }

  state(): SamplerState {
    return { rng: this.rng.state(), batches: this.batches };
  }

  /** Next batch: (B, S) token ids, row-major. */
  next(): Int32Array {
    const { B, S, tokens } = this;
    const out = new Int32Array(B * S); // (B, S)
    const maxStart = tokens.length - S;
    for (let b = 0; b < B; b++) {
      const start = this.rng.int(maxStart + 1);
      out.set(tokens.subarray(start, start + S), b * S);
    }
    this.batches++;
    return out;
  }
}

/**
 * Fixed validation batches: up to `maxBatches` batches of B windows of S tokens, evenly spaced over the split and not
 * overlapping. Fewer when the split is short.
 */
export function validationBatches(tokens: Int32Array, B: number, S: number, maxBatches: number): Int32Array[] {
  const windows = Math.min(Math.floor(tokens.length / S), maxBatches * B);
  const nb = Math.floor(windows / B);
  if (nb === 0)
    throw new Error(`data: the validation split has ${tokens.length} tokens; one batch needs B·S = ${B * S}`);
  const stride = Math.floor(tokens.length / (nb * B)); // ≥ S, so windows never overlap
  const out: Int32Array[] = [];
  for (let i = 0; i < nb; i++) {
    const batch = new Int32Array(B * S); // (B, S)
    for (let b = 0; b < B; b++) {
      const start = (i * B + b) * stride;
      batch.set(tokens.subarray(start, start + S), b * S);
    }
    out.push(batch);
  }
  return out;
}

/**
 * Per-token metadata of a byte-level stream, aligned with tokenizeDocs(docs, ByteTokenizer).tokens: the POS tag id
 * of the word each byte belongs to (Corpus.tags; 0 for spaces and the document separator) and the genre of its
 * document. For the interpretability tools ("which tags / genres make this expert fire").
 */
export function byteStreamMetadata(docs: CorpusDoc[]): { tags: Uint16Array; genre: Uint8Array; genres: string[] } {
  const sepLen = new TextEncoder().encode(DOC_SEPARATOR).length;
  const n = docs.reduce((a, d) => a + d.byteTags.length, 0) + Math.max(0, docs.length - 1) * sepLen;
  const tags = new Uint16Array(n); // (n,)
  const genre = new Uint8Array(n); // (n,) index into genres
  const genres = [...new Set(docs.map((d) => d.genre))].sort();
  if (genres.length > 255) throw new Error(`byteStreamMetadata: at most 255 genres, found ${genres.length}`);
  let o = 0;
  for (const [i, d] of docs.entries()) {
    if (i > 0) o += sepLen; // separator bytes: tag 0, genre of the next document
    const g = genres.indexOf(d.genre);
    genre.fill(g, i > 0 ? o - sepLen : 0, o + d.byteTags.length);
    tags.set(d.byteTags, o);
    o += d.byteTags.length;
  }
  return { tags, genre, genres };
}
