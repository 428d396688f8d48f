// `monet train --keep-every N` keeps model snapshots (steps 0, N, 2N, …, and the last), `monet inspect formation`
// follows the units across them, and `--force` replaces a run's snapshots (and nothing it did not write).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMonet } from './cli-run.ts';
import { loadModel } from '../src/train/checkpoint.ts';

const root = mkdtempSync(join(tmpdir(), 'interp-formation-'));
const textFile = join(root, 'text.txt');
writeFileSync(textFile, Array.from({ length: 300 }, (_, i) => `red green blue ${i % 7}, the cat sat.`).join('\n'));
const runs = join(root, 'runs');

const quiet = runMonet;

const TRAIN = (name: string, extra: string[]) => [
  'train',
  '--preset',
  'tiny',
  '--backend',
  'wasm',
  '--data',
  textFile,
  '--seq-len',
  '16',
  '--batch-size',
  '4',
  '--sample-tokens',
  '0',
  '--eval-batches',
  '1',
  '--runs-dir',
  runs,
  '--name',
  name,
  ...extra,
];

test('--keep-every 2 over 5 steps keeps steps 0, 2, 4 and 5; the last one is the final model', async () => {
  const r = await quiet(TRAIN('kept', ['--steps', '5', '--keep-every', '2']));
  assert.is(r.code, 0, r.err);
  const dir = join(runs, 'kept', 'snapshots');
  assert.equal(readdirSync(dir).sort(), ['step-000000', 'step-000002', 'step-000004', 'step-000005']);
  for (const s of readdirSync(dir))
    assert.equal(readdirSync(join(dir, s)).sort(), ['config.json', 'model.safetensors']);
  const params = (d: string) => [...loadModel(d).params].map(([k, v]) => `${k}:${Array.from(v).join(',')}`).join(';');
  const final = params(join(runs, 'kept'));
  assert.is(params(join(dir, 'step-000005')), final, 'the last snapshot holds the final parameters');
  assert.is.not(params(join(dir, 'step-000000')), final, 'step 0 holds the initial ones');
});

test('inspect formation: one row per snapshot, the tracked units, an HTML report', async () => {
  const r = await quiet(['inspect', 'formation', '--run', join(runs, 'kept'), '--windows', '4', '--min-fires', '2']);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /formation: 4 snapshots/);
  for (const step of [0, 2, 4, 5]) assert.match(r.out, new RegExp(`\\n${step}\\s+\\d+\\.\\d{4}\\s+\\d+`));
  const html = readFileSync(join(runs, 'kept', 'inspect-formation.html'), 'utf8');
  assert.match(html, /Median token entropy of the measured units/);
  assert.match(html, /<svg/);
});

test('inspect formation without snapshots says how to make them', async () => {
  const r = await quiet(TRAIN('plain', ['--steps', '2']));
  assert.is(r.code, 0, r.err);
  const f = await quiet(['inspect', 'formation', '--run', join(runs, 'plain')]);
  assert.is(f.code, 1);
  assert.match(f.err, /0 model snapshot\(s\) in snapshots\/.*train with --keep-every N/);
});

test('--force replaces a run with its snapshots; a foreign file among them is refused', async () => {
  const r = await quiet(TRAIN('kept', ['--steps', '2', '--force']));
  assert.is(r.code, 0, r.err);
  assert.not.ok(existsSync(join(runs, 'kept', 'snapshots')), 'the old snapshots went with the old run');
  const k = await quiet(TRAIN('kept2', ['--steps', '2', '--keep-every', '1']));
  assert.is(k.code, 0, k.err);
  writeFileSync(join(runs, 'kept2', 'snapshots', 'step-000001', 'notes.txt'), 'mine');
  const f = await quiet(TRAIN('kept2', ['--steps', '2', '--force']));
  assert.is(f.code, 1);
  assert.match(f.err, /holds files that monet train did not write \(snapshots\/\)/);
  assert.ok(existsSync(join(runs, 'kept2', 'snapshots', 'step-000001', 'notes.txt')), 'nothing was deleted');
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
