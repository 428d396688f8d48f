// The training loop end to end on the float64 reference: a run folder is complete, training lowers the loss,
// an interrupted run resumed with --resume ends bit-identical to an uninterrupted one, sample/eval read the folder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { train } from '../src/train/trainer.ts';
import { loadModel } from '../src/train/checkpoint.ts';
import { main } from '../src/cli/main.ts';

const dir = mkdtempSync(join(tmpdir(), 'monet-train-'));
const textFile = join(dir, 'text.txt');
// A small, very regular text: a tiny model can lower its loss on it within a few steps.
writeFileSync(textFile, Array.from({ length: 400 }, (_, i) => `the cat sat on the mat ${i % 7}.`).join('\n'));

const sink = () => {
  const lines: string[] = [];
  return { out: { write: (s: string) => void lines.push(s), isTTY: false }, lines };
};

function setup(extra: string[]) {
  const argv = [
    '--preset',
    'tiny',
    '--data',
    textFile,
    '--runs-dir',
    dir,
    '--batch-size',
    '4',
    '--seq-len',
    '16',
    '--eval-every',
    '4',
    '--eval-batches',
    '2',
    '--log-every',
    '1',
    '--save-every',
    '100',
    '--sample-tokens',
    '8',
    ...extra,
  ];
  if (!argv.includes('--backend')) argv.push('--backend', 'reference');
  const f = parseFlags('train', TRAIN_FLAGS, argv);
  const { preset, config } = resolveModel(f);
  return { o: resolveTrainOptions(f, preset, 'reference'), config };
}

test('a short reference run lowers the loss and writes a complete run folder', async () => {
  const { o, config } = setup(['--steps', '8', '--name', 'a']);
  const s = sink();
  const r = await train(o, config, false, { out: s.out });
  const run = join(dir, 'a');
  for (const f of [
    'config.json',
    'model.safetensors',
    'trainer_state.safetensors',
    'log.jsonl',
    'loss.svg',
    'run.json',
  ])
    assert.ok(existsSync(join(run, f)), f);
  const log = readFileSync(join(run, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const losses = log.filter((x) => typeof x.loss === 'number').map((x) => x.loss as number);
  assert.is(losses.length, 8);
  assert.ok(losses[7] < losses[0] - 0.3, `loss ${losses[0]} → ${losses[7]}`);
  const vals = log.filter((x) => typeof x.val_loss === 'number');
  assert.ok(vals.length >= 3); // step 0, step 4, final
  assert.is(r.steps, 8);
  assert.ok(Math.abs(r.valLoss - vals[vals.length - 1].val_loss) < 1e-12);
  assert.match(s.lines.join(''), /byte-unigram entropy/);
  assert.match(s.lines.join(''), /sample \(temperature/);
  assert.match(readFileSync(join(run, 'loss.svg'), 'utf8'), /<polyline/);
});

for (const backend of ['reference', 'wasm'] as const) {
  test(`${backend}: an interrupted run resumed with --resume ends bit-identical to an uninterrupted one`, async () => {
    const full = setup(['--steps', '6', '--name', `full-${backend}`, '--backend', backend]);
    await train(full.o, full.config, false, { out: sink().out });
    const part = setup(['--steps', '6', '--name', `part-${backend}`, '--backend', backend]);
    const stop = { requested: false };
    const s1 = sink();
    // Stop after step 3: the loop checks the flag after each step.
    let n = 0;
    const out = {
      write: (x: string) => {
        if (/step \d+\/6/.test(x) && ++n === 3) stop.requested = true;
        s1.lines.push(x);
      },
      isTTY: false,
    };
    await train(part.o, part.config, false, { out, stop });
    assert.match(s1.lines.join(''), /interrupted/);
    const mid = JSON.parse(readFileSync(join(dir, `part-${backend}`, 'run.json'), 'utf8'));
    assert.is(mid.step, 3);
    await train({ ...part.o }, part.config, true, { out: sink().out });
    const a = loadModel(join(dir, `full-${backend}`));
    const b = loadModel(join(dir, `part-${backend}`));
    for (const [k, v] of a.params) assert.equal(Array.from(b.params.get(k)!), Array.from(v), k);
    for (const [k, v] of a.state) assert.equal(Array.from(b.state.get(k)!), Array.from(v), k);
    // the log has exactly one training record per step
    const steps = readFileSync(join(dir, `part-${backend}`, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => typeof x.loss === 'number')
      .map((x) => x.step);
    assert.equal(steps, [1, 2, 3, 4, 5, 6]);
  });
}

test('a second run into the same folder is refused unless --resume or --force', async () => {
  const { o, config } = setup(['--steps', '2', '--name', 'a']);
  try {
    await train(o, config, false, { out: sink().out });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.match((e as Error).message, /already holds a run; pass --resume to continue it, --force to replace it/);
  }
});

test('monet sample and monet eval read the run folder', async () => {
  const logs: string[] = [];
  const log = console.log;
  const write = process.stdout.write.bind(process.stdout);
  console.log = (x: unknown) => void logs.push(String(x));
  process.stdout.write = ((x: string) => {
    logs.push(x);
    return true;
  }) as typeof process.stdout.write;
  try {
    assert.is(await main(['eval', '--checkpoint', join(dir, 'a'), '--backend', 'reference', '--json']), 0);
    assert.is(
      await main([
        'sample',
        '--checkpoint',
        join(dir, 'a'),
        '--backend',
        'reference',
        '--tokens',
        '5',
        '--prompt',
        'the ',
      ]),
      0,
    );
  } finally {
    console.log = log;
    process.stdout.write = write;
  }
  const res = JSON.parse(logs.find((l) => l.startsWith('{'))!);
  assert.ok(res.val_ce > 0 && res.unigram_entropy > 0);
  assert.is(res.step, 8);
  assert.ok(logs.join('').startsWith('the ') || logs.some((l) => l.startsWith('the ')));
});

test('CLI errors: unknown flag, flag for another ffn, missing --checkpoint', async () => {
  const errs: string[] = [];
  const err = console.error;
  console.error = (x: unknown) => void errs.push(String(x));
  try {
    assert.is(await main(['train', '--stepz', '3']), 2);
    assert.is(await main(['train', '--ffn', 'dense', '--moe-experts', '8']), 2);
    assert.is(await main(['train', '--ffn', 'smoe', '--preset', 'monet-vd-small']), 2);
    assert.is(await main(['sample']), 2);
    assert.is(await main(['eval', '--checkpoint', join(dir, 'missing')]), 1);
  } finally {
    console.error = err;
  }
  assert.match(errs[0], /unknown option --stepz; did you mean --steps\?/);
  assert.match(errs[1], /--moe-experts applies to --ffn monet; this model is dense/);
  assert.match(errs[2], /--ffn smoe conflicts with --preset monet-vd-small/);
  assert.match(errs[3], /--checkpoint <run folder> is required/);
  assert.match(errs[4], /run folder .*missing does not exist/);
});

test.run();
