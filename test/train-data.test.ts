// Corpus, tokenizer, batches, entropy: the data side of `monet train`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBrown, loadTextFiles, parseBrownDoc, byteUnigramEntropy, baseTag } from '../src/train/corpus.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';
import { BatchSampler, byteStreamMetadata, tokenizeDocs, validationBatches } from '../src/train/data.ts';
import { Rng } from '../src/train/rng.ts';

test('a tagged Brown sentence becomes plain text with one tag per byte', () => {
  const tags = [''];
  const ids = new Map([['', 0]]);
  const raw = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ,/, Atlanta's/np$ ./.\n\n\n\tIt/pps ran/vbd ./.\n";
  const { text, byteTags } = parseBrownDoc(raw, ids, tags, 'test');
  assert.is(text, 'The jury said "no", Atlanta\'s.\nIt ran.');
  assert.is(byteTags.length, new TextEncoder().encode(text).length);
  const tagAt = (i: number) => tags[byteTags[i]];
  assert.is(tagAt(0), 'at'); // T of The
  assert.is(tagAt(3), ''); // the space
  assert.is(tagAt(4), 'nn'); // j of jury
  assert.is(tagAt(text.indexOf('"')), '``');
  assert.is(tagAt(text.indexOf('Atlanta')), 'np$');
  assert.is(tagAt(text.indexOf('\n')), '');
});

test('a malformed token names the file', () => {
  assert.throws(
    () => parseBrownDoc('The/at jury', new Map([['', 0]]), [''], 'cz99'),
    /cz99: expected a word\/tag token, found 'jury'/,
  );
});

test('baseTag strips the title/headline/cited suffixes and the foreign-word prefix', () => {
  assert.is(baseTag('nn-tl'), 'nn');
  assert.is(baseTag('np$'), 'np$');
  assert.is(baseTag('fw-nn'), 'nn');
  assert.is(baseTag('jj-hl'), 'jj');
});

test('the Brown split is by document, deterministic, disjoint and covers every genre', () => {
  const c = loadBrown();
  assert.is(c.train.length + c.validation.length, 500);
  const trainIds = new Set(c.train.map((d) => d.id));
  for (const d of c.validation) assert.not.ok(trainIds.has(d.id), `${d.id} in both splits`);
  const genres = new Set(c.train.map((d) => d.genre));
  assert.is(genres.size, 15);
  for (const g of genres)
    assert.ok(
      c.validation.some((d) => d.genre === g),
      `genre ${g} has no validation document`,
    );
  const share = c.validation.length / 500;
  assert.ok(share > 0.08 && share < 0.14, `validation share ${share}`);
  // No tags left in the text, and byte tags line up with the UTF-8 bytes.
  for (const d of c.validation.slice(0, 5)) {
    assert.not.match(d.text, /\/(nn|at|vbd|in)\b/);
    assert.is(d.byteTags.length, new TextEncoder().encode(d.text).length);
  }
  assert.ok(c.tags.includes('nn') && c.tags.includes('vbd'));
});

test('byte tokenizer round-trips UTF-8 and refuses ids outside 0..255', () => {
  const tok = new ByteTokenizer();
  const s = 'naïve café — 1961';
  const ids = tok.encode(s);
  assert.is(ids.length, new TextEncoder().encode(s).length);
  assert.is(tok.decode(ids), s);
  assert.throws(() => tok.decode([65, 256]), /expected byte ids 0\.\.255, found 256 at position 1/);
});

test('byte-unigram entropy: uniform over 4 symbols is ln 4; one symbol is 0', () => {
  assert.ok(Math.abs(byteUnigramEntropy(new Uint8Array([1, 2, 3, 4, 1, 2, 3, 4])) - Math.log(4)) < 1e-12);
  assert.is(byteUnigramEntropy(new Uint8Array([7, 7, 7])), 0);
});

test('English text has a byte-unigram entropy between 4 and 5 bits', () => {
  const c = loadBrown();
  const tok = new ByteTokenizer();
  const { tokens } = tokenizeDocs(c.validation, tok);
  const bits = byteUnigramEntropy(Uint8Array.from(tokens)) / Math.LN2;
  assert.ok(bits > 4 && bits < 5, `entropy ${bits} bits`);
});

test('the batch sampler is deterministic per seed and resumes from its saved state', () => {
  const tokens = Int32Array.from({ length: 1000 }, (_, i) => i % 251);
  const a = new BatchSampler(tokens, 3, 17, 42);
  const first = [a.next(), a.next()];
  const saved = a.state();
  const third = a.next();
  const b = new BatchSampler(tokens, 3, 17, 42);
  assert.equal(Array.from(b.next()), Array.from(first[0]));
  const resumed = new BatchSampler(tokens, 3, 17, saved);
  assert.equal(Array.from(resumed.next()), Array.from(third));
  assert.is(resumed.batches, 3);
  // each row is a contiguous window of the stream
  for (let r = 0; r < 3; r++) {
    const row = third.subarray(r * 17, r * 17 + 17);
    for (let j = 1; j < 17; j++) assert.is(row[j], (row[j - 1] + 1) % 251);
  }
});

test('validation batches are evenly spaced, non-overlapping windows', () => {
  const tokens = Int32Array.from({ length: 1000 }, (_, i) => i);
  const vb = validationBatches(tokens, 2, 10, 100);
  const starts = vb.flatMap((b) => [b[0], b[10]]);
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i] - starts[i - 1] >= 10);
  assert.is(vb.length, 50);
  assert.throws(
    () => validationBatches(tokens.subarray(0, 15), 2, 10, 4),
    /validation split has 15 tokens; one batch needs B·S = 20/,
  );
});

test('--data text files: last ~10 % of each file is validation; missing files are named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-data-'));
  const p = join(dir, 'a.txt');
  writeFileSync(p, Array.from({ length: 200 }, (_, i) => `line ${i} of the text`).join('\n'));
  const c = loadTextFiles([p]);
  assert.is(c.train.length, 1);
  assert.is(
    c.train[0].text + c.validation[0].text,
    Array.from({ length: 200 }, (_, i) => `line ${i} of the text`).join('\n'),
  );
  assert.ok(c.validation[0].text.startsWith('line '));
  assert.throws(() => loadTextFiles([join(dir, 'nope.txt')]), /--data file '.*nope\.txt' does not exist/);
});

test('Rng: seeded streams repeat, differ by seed, restore from state, and refuse bad seeds', () => {
  const a = new Rng(1);
  const b = new Rng(1);
  const c = new Rng(2);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.equal(
    xs,
    Array.from({ length: 5 }, () => b.nextU32()),
  );
  assert.not.equal(
    xs,
    Array.from({ length: 5 }, () => c.nextU32()),
  );
  const st = a.state();
  const y = a.next();
  assert.is(new Rng(st).next(), y);
  assert.throws(() => new Rng(-1), /integer seed/);
  // normal(): mean ≈ 0, variance ≈ 1 over 20k draws (5σ bounds)
  const r = new Rng(3);
  let s1 = 0,
    s2 = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const z = r.normal();
    s1 += z;
    s2 += z * z;
  }
  assert.ok(Math.abs(s1 / n) < 5 / Math.sqrt(n));
  assert.ok(Math.abs(s2 / n - 1) < 5 * Math.sqrt(2 / n));
});

test('byte-stream metadata lines up with the token stream: tags per byte, genre per document', () => {
  const c = loadBrown();
  const docs = c.validation.slice(0, 3);
  const { tokens } = tokenizeDocs(docs, new ByteTokenizer());
  const meta = byteStreamMetadata(docs);
  assert.is(meta.tags.length, tokens.length);
  const text = new TextDecoder().decode(Uint8Array.from(tokens));
  const i = text.indexOf(' the ') + 1; // a 'the' (tag at) somewhere in the stream
  assert.is(c.tags[meta.tags[i]], 'at');
  assert.is(meta.tags[i - 1], 0);
  assert.is(meta.genres[meta.genre[tokens.length - 1]], docs[2].genre);
  assert.is(meta.genres[meta.genre[0]], docs[0].genre);
});

test.run();
