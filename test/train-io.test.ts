// Run-folder pieces of `monet train`: flags, schedules, atomic writes, checkpoints, the loss SVG, the progress line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags, type FlagSpec } from '../src/train/flags.ts';
import { learningRate, topkAlpha } from '../src/train/schedule.ts';
import { writeFileAtomic, appendJsonl } from '../src/train/atomic.ts';
import { saveModel, loadModel, saveTrainerState, loadTrainerState } from '../src/train/checkpoint.ts';
import { sealedJson } from '../src/validate.ts';
import { lossCurveSvg, niceTicks } from '../src/train/svg.ts';
import { progressLine, formatDuration } from '../src/train/progress.ts';
import { getPreset, paramSpecs } from '../src/train/presets.ts';
import { initParams } from '../src/train/init.ts';
import { parseSafetensors } from '../src/safetensors.ts';

const SPECS: FlagSpec[] = [
  { name: 'steps', type: 'int', help: '', positive: true },
  { name: 'lr', type: 'float', help: '', positive: true },
  { name: 'ffn', type: 'string', help: '', choices: ['dense', 'monet'] },
  { name: 'resume', type: 'bool', help: '' },
  { name: 'data', type: 'list', help: '' },
];

test('flags: values, =, booleans, lists', () => {
  const v = parseFlags('train', SPECS, [
    '--steps',
    '10',
    '--lr=3e-4',
    '--ffn',
    'monet',
    '--resume',
    '--data',
    'a.txt,b.txt',
    'c.txt',
  ]);
  assert.equal(v, { steps: 10, lr: 3e-4, ffn: 'monet', resume: true, data: ['a.txt', 'b.txt', 'c.txt'] });
  assert.equal(parseFlags('train', SPECS, ['--no-resume']), { resume: false });
});

test('flags: wrong input says what was expected, what was found, and which flag', () => {
  const bad = (argv: string[], re: RegExp) => assert.throws(() => parseFlags('train', SPECS, argv), re);
  bad(['--steps', 'ten'], /--steps expects a positive integer, found 'ten'/);
  bad(['--steps', '0'], /--steps expects a positive integer, found '0'/);
  bad(['--steps', '1.5'], /--steps expects a positive integer, found '1\.5'/);
  bad(['--lr', 'fast'], /--lr expects a positive number, found 'fast'/);
  bad(['--ffn', 'mlp'], /--ffn expects one of dense, monet, found 'mlp'/);
  bad(['--step', '3'], /unknown option --step; did you mean --steps\?/);
  bad(['--steps'], /--steps needs a value/);
  bad(['stray'], /unexpected argument 'stray'/);
  bad(['--resume=maybe'], /--resume expects true or false, found 'maybe'/);
});

test('learning rate: linear warm-up to the peak, cosine to the floor at the last step', () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmup: 10, steps: 110 };
  assert.ok(Math.abs(learningRate(s, 0) - 1e-4) < 1e-15);
  assert.ok(Math.abs(learningRate(s, 9) - 1e-3) < 1e-15);
  assert.ok(Math.abs(learningRate(s, 10) - 1e-3) < 1e-15);
  assert.ok(Math.abs(learningRate(s, 109) - 1e-4) < 1e-15);
  assert.ok(Math.abs(learningRate(s, 10 + 49.5) - 5.5e-4) < 1e-12); // half-way: the mean of peak and floor
  for (let i = 11; i < 110; i++) assert.ok(learningRate(s, i) <= learningRate(s, i - 1));
});

test('TopK α: 1 → 0 linearly over the annealing ratio of the steps, then 0', () => {
  assert.is(topkAlpha(0.2, 100, 0), 1);
  assert.ok(Math.abs(topkAlpha(0.2, 100, 10) - 0.5) < 1e-15);
  assert.is(topkAlpha(0.2, 100, 20), 0);
  assert.is(topkAlpha(0.2, 100, 90), 0);
  assert.is(topkAlpha(0, 100, 0), 0);
});

test('atomic write replaces the file and leaves no temp file behind; JSONL appends lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-atomic-'));
  const p = join(dir, 'x.json');
  writeFileAtomic(p, 'old');
  writeFileAtomic(p, new TextEncoder().encode('new'));
  assert.is(readFileSync(p, 'utf8'), 'new');
  assert.equal(readdirSync(dir), ['x.json']);
  appendJsonl(join(dir, 'log.jsonl'), { step: 1, loss: 2.5 });
  appendJsonl(join(dir, 'log.jsonl'), { step: 2, loss: 2.25 });
  const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines, [
    { step: 1, loss: 2.5 },
    { step: 2, loss: 2.25 },
  ]);
});

test('checkpoint round trip: HF names, BN buffers without the state. prefix, f32 storage, config.json', () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-ckpt-'));
  const config = getPreset('tiny').config;
  const { params, state } = initParams(config, 1);
  const p32 = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
  const s32 = new Map([...state].map(([k, v]) => [k, Float32Array.from(v)]));
  saveModel(dir, config, 'bytes', p32, s32);
  const raw = parseSafetensors(readFileSync(join(dir, 'model.safetensors')));
  assert.ok(raw.tensors.has('model.layers.1.router.norm1.running_mean'));
  assert.is(raw.tensors.get('model.embed_tokens.weight')?.dtype, 'F32');
  const back = loadModel(dir);
  assert.equal(back.config, config);
  assert.is(back.tokenizer, 'bytes');
  for (const [k, v] of p32) assert.equal(Array.from(back.params.get(k)!), Array.from(v), k);
  assert.equal(Array.from(back.state.get('state.model.layers.0.router.norm2.running_var')!), [1, 1]);
  // a config that disagrees with the tensors is reported with the tensor name and both shapes
  // (a forged config.json: the checksum recomputed, so that the shape check is what must catch it)
  const { monet_ts_checksum, ...cfg } = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  void monet_ts_checksum;
  writeFileSync(join(dir, 'config.json'), sealedJson({ ...cfg, vocab_size: 128 }));
  assert.throws(
    () => loadModel(dir),
    /tensor 'model\.embed_tokens\.weight' has shape \[256,16\], config\.json implies \[128,16\]/,
  );
  assert.throws(() => loadModel(join(dir, 'nope')), /config\.json does not exist/);
});

test('trainer state round trip: moments, step, sampler position', () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-state-'));
  const config = getPreset('tiny').config;
  const m = new Map(
    paramSpecs(config).map((s) => [s.name, new Float64Array(s.shape.reduce((a, b) => a * b, 1)).fill(0.5)]),
  );
  const v = new Map(
    paramSpecs(config).map((s) => [s.name, new Float64Array(s.shape.reduce((a, b) => a * b, 1)).fill(0.25)]),
  );
  saveTrainerState(dir, config, { step: 17, sampler: { rng: [1, 2, 3, 4], batches: 17 }, info: { lr: 1e-3 }, m, v });
  const st = loadTrainerState(dir, config);
  assert.is(st.step, 17);
  assert.equal(st.sampler, { rng: [1, 2, 3, 4], batches: 17 });
  assert.equal(st.info, { lr: 1e-3 });
  assert.is(st.v.get('lm_head.weight')![3], 0.25);
  assert.throws(() => loadTrainerState(join(dir, 'none'), config), /trainer_state\.safetensors does not exist/);
});

test('loss SVG is self-contained and well-formed enough to parse as XML-ish', () => {
  const svg = lossCurveSvg(
    'run <a>',
    [
      {
        label: 'train',
        color: '#1f77b4',
        points: [
          [0, 5.5],
          [1, 4],
          [2, 3.1],
        ],
      },
      { label: 'val', color: '#d62728', points: [[2, 3.3]], dots: true },
    ],
    [{ label: 'unigram', color: '#999', y: 3.0 }],
  );
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trim().endsWith('</svg>'));
  assert.not.match(svg, /<script|href=|url\(/);
  assert.match(svg, /run &lt;a&gt;/);
  assert.is((svg.match(/<polyline/g) ?? []).length, 2);
  assert.equal(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
});

test('progress line shows step, loss, tokens/s and ETA', () => {
  const line = progressLine({ step: 50, steps: 200, loss: 2.34567, tokensPerSec: 12345, elapsed: 60, lr: 1e-3 });
  assert.match(line, /step 50\/200/);
  assert.match(line, /loss 2\.3457/);
  assert.match(line, /12\.3k tok\/s/);
  assert.match(line, /ETA 03:00/);
  assert.is(formatDuration(3725), '1:02:05');
});

test.run();
