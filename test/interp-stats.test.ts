// Entropy math, the top-M heap, the genre-selection rule, analysis windows, matched random draws.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../reference/rng.ts';
import { buildWindows, contextOf, wordAt } from '../src/interp/data.ts';
import { matchedDraw } from '../src/interp/mask.ts';
import { entropyBits, labelSpecificUnits, quantile, TopHeap } from '../src/interp/stats.ts';
import { loadBrown } from '../src/train/corpus.ts';

test('entropyBits: known values, zero counts, a Map iterator, bad input', () => {
  assert.is(entropyBits([5]), 0);
  assert.is(entropyBits([]), 0);
  assert.ok(Math.abs(entropyBits([1, 1, 1, 1]) - 2) < 1e-15);
  assert.ok(Math.abs(entropyBits([1, 1, 2]) - 1.5) < 1e-15); // ½·1 + ¼·2 + ¼·2
  assert.ok(Math.abs(entropyBits([3, 0, 3]) - 1) < 1e-15);
  // p = (0.9, 0.1): −0.9 log2 0.9 − 0.1 log2 0.1, written out
  assert.ok(Math.abs(entropyBits([9, 1]) - (0.9 * Math.log2(1 / 0.9) + 0.1 * Math.log2(10))) < 1e-15);
  // an iterator can be consumed once: the function must not walk it twice
  assert.ok(
    Math.abs(
      entropyBits(
        new Map([
          ['a', 2],
          ['b', 2],
        ]).values(),
      ) - 1,
    ) < 1e-15,
  );
  assert.throws(() => entropyBits([1, -1]), /≥ 0/);
});

test('TopHeap keeps the M largest scores (vs a full sort), ties spread by a fixed scramble', () => {
  const rng = new Rng(1);
  for (const M of [1, 5, 40]) {
    const h = new TopHeap(M);
    const all: number[] = [];
    for (let p = 0; p < 500; p++) {
      const s = Math.round(rng.uniform() * 20) / 4; // many ties
      all.push(s);
      h.push(s, p);
    }
    const kept = h.sorted();
    assert.is(kept.length, M);
    const want = [...all].sort((a, b) => b - a).slice(0, M);
    assert.equal(
      kept.map((k) => k.score),
      want,
    );
    for (const k of kept) assert.is(all[k.pos], k.score);
  }
  // fewer pairs than M (the heap's storage grows as they arrive): all of them, highest first
  for (const n of [3, 6, 37]) {
    const h = new TopHeap(100);
    const all = Array.from({ length: n }, () => Math.round(rng.uniform() * 20) / 4);
    for (const [p, s] of all.entries()) h.push(s, p);
    assert.equal(
      h.sorted().map((k) => k.score),
      [...all].sort((a, b) => b - a),
    );
  }
  // With all scores equal, the kept positions are not simply the first M.
  const h = new TopHeap(10);
  for (let p = 0; p < 1000; p++) h.push(1, p);
  assert.ok(Math.max(...h.sorted().map((k) => k.pos)) > 100);
});

test('quantile interpolates between order statistics', () => {
  assert.is(quantile([3, 1, 2], 0.5), 2);
  assert.is(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.is(quantile([1, 2, 3, 4], 0), 1);
  assert.is(quantile([1, 2, 3, 4], 1), 4);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('labelSpecificUnits: ≥ 2× every other label, inclusive at exactly 2×, never for zero scores', () => {
  // 6 units × 3 labels (mean score per label)
  const G = 3;
  const m = Float64Array.from([
    0.4,
    0.2,
    0.1, // unit 0: exactly 2× the runner-up on label 0 → selected for 0
    0.39,
    0.2,
    0.1, // unit 1: 1.95× → not selected
    0.0,
    0.0,
    0.0, // unit 2: never fires → nothing
    0.0,
    0.3,
    0.0, // unit 3: only label 1 → selected for 1
    0.5,
    0.5,
    0.1, // unit 4: shared by 0 and 1 → nothing
    0.01,
    0.0,
    0.2, // unit 5: label 2 (20×)
  ]);
  assert.equal(labelSpecificUnits(m, 6, G, 0), [0]);
  assert.equal(labelSpecificUnits(m, 6, G, 1), [3]);
  assert.equal(labelSpecificUnits(m, 6, G, 2), [5]);
  assert.equal(labelSpecificUnits(m, 6, G, 0, 1.9), [0, 1]);
  assert.throws(() => labelSpecificUnits(m, 5, G, 0), /expected 5·3/);
  assert.throws(() => labelSpecificUnits(m, 6, G, 3), /out of range/);
});

test('buildWindows on Brown: equal windows per genre, each inside one document, tags from that document', () => {
  const c = loadBrown();
  const S = 48;
  const text = buildWindows(c.validation, (d) => d.genre, c.tags, S, 3, true);
  assert.is(text.labels.length, 15);
  assert.is(text.windows, 45);
  const enc = new TextEncoder();
  for (let w = 0; w < text.windows; w++) {
    const [id, at] = text.windowDoc[w].split('@');
    const doc = c.validation.find((d) => d.id === id)!;
    assert.is(text.labels[text.windowLabel[w]], doc.genre);
    const bytes = enc.encode(doc.text).subarray(Number(at), Number(at) + S);
    assert.equal(Array.from(text.tokens.subarray(w * S, (w + 1) * S)), Array.from(bytes));
    // the tag of a letter is a real POS tag, of a space the empty tag 0
    for (let s = 0; s < S; s++) {
      const b = text.tokens[w * S + s];
      if (b === 32) assert.is(text.tokenTags[w * S + s], 0);
      if ((b >= 97 && b <= 122) || (b >= 65 && b <= 90)) assert.ok(text.tags[text.tokenTags[w * S + s]].length > 0);
    }
  }
  // deterministic
  const again = buildWindows(c.validation, (d) => d.genre, c.tags, S, 3, true);
  assert.equal(Array.from(again.tokens), Array.from(text.tokens));
});

test('wordAt and contextOf', () => {
  const enc = new TextEncoder();
  const s = 'He said: "hello_world" now.';
  const b = enc.encode(s);
  const text = {
    S: b.length,
    labels: ['x'],
    tagSet: null,
    tags: [''],
    windows: 1,
    tokens: Int32Array.from(b),
    tokenTags: new Uint16Array(b.length),
    windowLabel: new Int32Array(1),
    windowDoc: ['d@0'],
  };
  assert.is(wordAt(text, 0, s.indexOf('w')), 'hello_world');
  assert.is(wordAt(text, 0, 0), 'he');
  assert.is(wordAt(text, 0, s.indexOf(':')), '');
  assert.equal(contextOf(text, 0, s.indexOf('s'), 3), ['He ', 's', 'aid']);
  assert.equal(contextOf(text, 0, 2, 2), ['He', '␣', 'sa']);
});

test('matchedDraw: as many units as selected, none of them selected, each among the nearest in usage', () => {
  const usage = Float64Array.from({ length: 100 }, (_, u) => u / 100); // usage rank = id
  const pool = Int32Array.from({ length: 100 }, (_, u) => u);
  const selected = new Set([10, 11, 50, 90]);
  const rng = new Rng(4);
  for (let r = 0; r < 20; r++) {
    const d = [...matchedDraw(selected, pool, usage, rng)].sort((a, b) => a - b);
    assert.is(d.length, 4);
    assert.ok(
      d.every((u) => !selected.has(u)),
      `disjoint from the selection: ${d}`,
    );
    // units 10 and 11 draw from the 6 free units nearest to them (7–9, 12–14 …), 50 and 90 from ±3
    assert.ok(d.filter((u) => u >= 6 && u <= 15).length === 2, `two near 10/11: ${d}`);
    assert.ok(d.some((u) => Math.abs(u - 50) <= 3) && d.some((u) => Math.abs(u - 90) <= 3), `near 50 and 90: ${d}`);
  }
});

test.run();
