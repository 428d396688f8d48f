// The text the interpretability tools run through a model: fixed windows of S tokens, each cut from ONE document,
// labelled with that document's genre (Brown) or language (code corpus), with the POS tag of every token.
//
// Sizes: W windows, S tokens per window, G labels.
//
// Windows are picked per label and evenly spaced over that label's documents (deterministic: no randomness, the same
// windows every time), so every label gets the same number of tokens and a per-label loss is a mean over equal
// amounts of text. Selection of label-specific units uses windows of the TRAINING split; losses are measured on the
// VALIDATION split, so the experts are never chosen on the text they are judged on.

import { basename, extname } from 'node:path';
import { baseTag, loadBrown, loadTextFiles, type Corpus, type CorpusDoc } from '../train/corpus.ts';

/**
 * How token ids read as text. Our runs use bytes (id = UTF-8 byte); a MonetLLM folder's tokenizer has subword
 * pieces. Windows, contexts and words go through this, so the inspect tools show either.
 */
export interface TokenVocab {
  /** 'bytes' (id = UTF-8 byte) or 'pieces' (a subword tokenizer). */
  readonly kind: 'bytes' | 'pieces';
  /** Ids of a text, no special tokens. */
  encode(text: string): Int32Array;
  /** Printable form of one token. */
  show(id: number): string;
  /** Text of a run of tokens. */
  decode(ids: ArrayLike<number>): string;
}

export interface AnalysisText {
  S: number;
  /** How the ids read (bytes when absent). */
  vocab?: TokenVocab;
  labels: string[]; // (G) genre or language names, sorted
  /** Name of the per-token tag set ('POS (Brown)') or null when the corpus has no tags (code). */
  tagSet: string | null;
  tags: string[]; // tag names by id (base tags, e.g. 'nn', 'vbd'); id 0 = '' (whitespace)
  windows: number; // W
  tokens: Int32Array; // (W, S) byte ids
  tokenTags: Uint16Array; // (W, S) tag id of each token (0 when none)
  windowLabel: Int32Array; // (W) label index
  windowDoc: string[]; // (W) document id
}

const enc = new TextEncoder();

/**
 * The corpus a run trained on: Brown, or the --data files with each file's base name as its label, or the label
 * `labels` gives a file (`--label NAME=FILE`).
 */
export function corpusOfRun(
  data: string[] | null,
  labels?: ReadonlyMap<string, string>,
): { corpus: Corpus; labelOf: (doc: CorpusDoc) => string } {
  if (!data) return { corpus: loadBrown(), labelOf: (d) => d.genre };
  const corpus = loadTextFiles(data);
  return { corpus, labelOf: (d) => labels?.get(d.id) ?? basename(d.id, extname(d.id)) };
}

/**
 * W windows per label from `docs`: window w of a label starts at fraction (w + ½)/W of that label's text (documents
 * laid end to end), moved back inside its document when it would run past the end. Documents shorter than S tokens
 * are skipped.
 */
export function buildWindows(
  docs: CorpusDoc[],
  labelOf: (doc: CorpusDoc) => string,
  corpusTags: string[],
  S: number,
  perLabel: number,
  hasTags: boolean,
  vocab?: TokenVocab,
): AnalysisText {
  // Base tags: 'nn-tl' and 'nn' are one part of speech for the entropy.
  const tagIds = new Map<string, number>([['', 0]]);
  const tags = [''];
  const baseId = corpusTags.map((t) => {
    const b = baseTag(t);
    let id = tagIds.get(b);
    if (id === undefined) {
      id = tags.length;
      tags.push(b);
      tagIds.set(b, id);
    }
    return id;
  });
  // `bytes` holds the document's token ids: its UTF-8 bytes, or the vocabulary's pieces (then without POS tags)
  const byLabel = new Map<string, Array<{ doc: CorpusDoc; bytes: Uint8Array | Int32Array }>>();
  const tagged = hasTags && !(vocab && vocab.kind !== 'bytes');
  for (const doc of docs) {
    const bytes = vocab && vocab.kind !== 'bytes' ? vocab.encode(doc.text) : enc.encode(doc.text);
    if (bytes.length < S) continue;
    const l = labelOf(doc);
    const list = byLabel.get(l) ?? [];
    list.push({ doc, bytes });
    byLabel.set(l, list);
  }
  const labels = [...byLabel.keys()].sort();
  if (labels.length === 0) throw new Error(`inspect: no document has at least S = ${S} tokens`);
  const W = labels.length * perLabel;
  const tokens = new Int32Array(W * S); // (W, S)
  const tokenTags = new Uint16Array(W * S); // (W, S)
  const windowLabel = new Int32Array(W); // (W)
  const windowDoc: string[] = [];
  let w = 0;
  for (const [g, label] of labels.entries()) {
    const list = byLabel.get(label)!;
    const total = list.reduce((a, x) => a + x.bytes.length, 0);
    for (let k = 0; k < perLabel; k++) {
      let at = Math.floor(((k + 0.5) / perLabel) * total);
      let di = 0;
      while (at >= list[di].bytes.length) {
        at -= list[di].bytes.length;
        di++;
      }
      const { doc, bytes } = list[di];
      const start = Math.min(at, bytes.length - S);
      for (let s = 0; s < S; s++) {
        tokens[w * S + s] = bytes[start + s];
        tokenTags[w * S + s] = tagged ? baseId[doc.byteTags[start + s]] : 0;
      }
      windowLabel[w] = g;
      windowDoc.push(`${doc.id}@${start}`);
      w++;
    }
  }
  return {
    S,
    vocab,
    labels,
    tagSet: tagged ? 'POS (Brown)' : null,
    tags,
    windows: W,
    tokens,
    tokenTags,
    windowLabel,
    windowDoc,
  };
}

/** Windows of a run's validation or training split. */
export function runWindows(
  data: string[] | null,
  split: 'validation' | 'train',
  S: number,
  perLabel: number,
  vocab?: TokenVocab,
  labels?: ReadonlyMap<string, string>,
): AnalysisText {
  const { corpus, labelOf } = corpusOfRun(data, labels);
  return buildWindows(
    split === 'validation' ? corpus.validation : corpus.train,
    labelOf,
    corpus.tags,
    S,
    perLabel,
    corpus.name === 'brown',
    vocab,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Showing text.

const dec = new TextDecoder('utf-8', { fatal: false });

/** Printable form of one byte token: letters as themselves, whitespace and controls escaped. */
export function showToken(b: number): string {
  if (b === 32) return '␣';
  if (b === 10) return '\\n';
  if (b === 9) return '\\t';
  if (b < 32 || b === 127) return `\\x${b.toString(16).padStart(2, '0')}`;
  if (b >= 128) return `\\x${b.toString(16)}`;
  return String.fromCharCode(b);
}

/** Printable form of a token id in a text's vocabulary (bytes when it has none). */
export function showTokenOf(text: { vocab?: TokenVocab }, id: number): string {
  return text.vocab ? text.vocab.show(id) : showToken(id);
}

/** Text around position s of window w: [before, the token, after], newlines shown as ⏎. */
export function contextOf(text: AnalysisText, w: number, s: number, radius: number): [string, string, string] {
  const S = text.S;
  const row = text.tokens.subarray(w * S, (w + 1) * S);
  const decode = (a: Int32Array) => (text.vocab ? text.vocab.decode(a) : dec.decode(Uint8Array.from(a)));
  const clean = (a: Int32Array) => decode(a).replace(/\n/g, '⏎').replace(/\t/g, ' ');
  return [
    clean(row.subarray(Math.max(0, s - radius), s)),
    showTokenOf(text, row[s]),
    clean(row.subarray(s + 1, Math.min(S, s + 1 + radius))),
  ];
}

const isWordByte = (b: number) =>
  (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b === 95 || b === 39 || b >= 128;

/** The word (letters, digits, _, ', non-ASCII) around position s of window w; '' when the token is not in a word. */
export function wordAt(text: AnalysisText, w: number, s: number): string {
  const S = text.S;
  const row = text.tokens.subarray(w * S, (w + 1) * S);
  if (text.vocab && text.vocab.kind !== 'bytes') {
    // a subword piece: the word is the piece's own letters (pieces rarely span words)
    const piece = text.vocab.decode([row[s]]).trim().toLowerCase();
    return /[\p{L}\p{N}]/u.test(piece) ? piece : '';
  }
  if (!isWordByte(row[s])) return '';
  let a = s;
  let b = s + 1;
  while (a > 0 && isWordByte(row[a - 1])) a--;
  while (b < S && isWordByte(row[b])) b++;
  return dec.decode(Uint8Array.from(row.subarray(a, b))).toLowerCase();
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
