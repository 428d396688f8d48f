// Tokens/s of one training step (forward, backward, gradient clipping, AdamW) of the default `monet train` model on
// our WASM backend, against the same model in PyTorch eager on the same CPU, measured in the same run.
//
//   node --import tsx bench/train-step.ts [--backend wasm] [--preset monet-vd-small] [--steps 10] [--batch-size 16]
//                                         [--seq-len 128] [--torch-threads N] [--rounds 3]
//
// Both sides start from the same parameters and the same batch (written to a temp folder as safetensors); the step-0
// losses are printed side by side as a check that they run the same model. Prints a table and the ratio
// ours / PyTorch (target ≥ 0.5). Not a test: timings are machine-dependent.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSafetensors } from '../src/safetensors.ts';
import { saveModel } from '../src/train/checkpoint.ts';
import { loadBrown } from '../src/train/corpus.ts';
import { BatchSampler, tokenizeDocs } from '../src/train/data.ts';
import { createEngine } from '../src/train/engines.ts';
import { parseFlags, type FlagSpec } from '../src/train/flags.ts';
import { initParams } from '../src/train/init.ts';
import { BACKENDS, type BackendChoice } from '../src/train/options.ts';
import { getPreset, paramBreakdown, formatCount } from '../src/train/presets.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';

const FLAGS: FlagSpec[] = [
  { name: 'backend', type: 'string', choices: BACKENDS, help: '' },
  { name: 'preset', type: 'string', help: '' },
  { name: 'steps', type: 'int', positive: true, help: '' },
  { name: 'warmup', type: 'int', positive: true, help: '' },
  { name: 'batch-size', type: 'int', positive: true, help: '' },
  { name: 'seq-len', type: 'int', min: 2, help: '' },
  { name: 'torch-threads', type: 'int', min: 0, help: '' },
  { name: 'lr', type: 'float', positive: true, help: '' },
  { name: 'rounds', type: 'int', positive: true, help: '' },
];

const f = parseFlags('bench/train-step.ts', FLAGS, process.argv.slice(2));
const backend = (f.backend as BackendChoice | undefined) ?? 'wasm';
const presetName = (f.preset as string | undefined) ?? 'monet-vd-small';
const steps = (f.steps as number | undefined) ?? 10;
const warmup = (f.warmup as number | undefined) ?? 2;
const B = (f['batch-size'] as number | undefined) ?? 16;
const S = (f['seq-len'] as number | undefined) ?? 128;
const lr = (f.lr as number | undefined) ?? 3e-3;
const config = getPreset(presetName).config;
if (S > config.max_position_embeddings) config.max_position_embeddings = S;

const { params, state } = initParams(config, 1);
const tokens = tokenizeDocs(loadBrown().train.slice(0, 20), new ByteTokenizer()).tokens;
const batch = new BatchSampler(tokens, B, S, 3).next();

// Both sides are timed in alternating rounds (ours, PyTorch, ours, PyTorch, …) and each reports its best round:
// on a shared machine the load changes from minute to minute, and the best round is the least disturbed one.
const rounds = (f.rounds as number | undefined) ?? 3;
const dir = mkdtempSync(join(tmpdir(), 'monet-bench-'));
saveModel(
  dir,
  config,
  'bytes',
  new Map([...params].map(([k, v]) => [k, Float32Array.from(v)])),
  new Map([...state].map(([k, v]) => [k, Float32Array.from(v)])),
);
writeFileSync(
  join(dir, 'batch.safetensors'),
  serializeSafetensors(new Map([['tokens', { dtype: 'I32', shape: [B, S], data: batch }]])),
);
const threads = (f['torch-threads'] as number | undefined) ?? 0;

const { engine } = await createEngine(backend, { config, params, state });
const hp = (i: number) => ({
  lr,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1,
  step: i + 1,
  alpha: 1,
});
// Every step reads its loss back (as a run does with --log-every 1): the timing includes the wait for the device.
let stepNo = 0;
const r0 = await engine.trainStep([batch], B, S, hp(stepNo++), true);
for (let i = 1; i < warmup; i++) await engine.trainStep([batch], B, S, hp(stepNo++), true);
const ourName = engine.name;
let oursSec = Infinity;
let torchRes:
  | { loss0: number; tokens_per_s: number; seconds_per_step: number; threads: number; torch: string }
  | undefined;
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await engine.trainStep([batch], B, S, hp(stepNo++), true);
  oursSec = Math.min(oursSec, (performance.now() - t0) / 1000 / steps);
  const py = spawnSync(
    '/usr/bin/python3',
    [
      'bench/train_step_torch.py',
      dir,
      '--steps',
      String(steps),
      '--warmup',
      String(warmup),
      '--threads',
      String(threads),
      '--lr',
      String(lr),
    ],
    { encoding: 'utf8' },
  );
  if (py.status !== 0) {
    console.error(`PyTorch side failed (exit ${py.status}):\n${py.stderr}`);
    process.exit(1);
  }
  const res = JSON.parse(py.stdout.trim().split('\n').pop()!) as NonNullable<typeof torchRes>;
  if (!torchRes || res.seconds_per_step < torchRes.seconds_per_step) torchRes = res;
}
await engine.dispose();
const oursTps = (B * S) / oursSec;
torchRes = torchRes!;

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`best of ${rounds} alternating rounds of ${steps} steps each (after ${warmup} warm-up steps)`);
console.log(
  `training step of ${presetName} (${formatCount(paramBreakdown(config).total)} parameters), batch ${B} × seq ${S} = ${B * S} tokens; ${cpu}, ${cpus().length} cores`,
);
console.log(
  `step-0 loss: ours ${r0!.loss.toFixed(5)}, PyTorch ${torchRes.loss0.toFixed(5)} (same parameters and batch)`,
);
console.log('');
console.log('| implementation | s/step | tokens/s |');
console.log('|---|---|---|');
console.log(`| ours, ${ourName} | ${oursSec.toFixed(3)} | ${Math.round(oursTps)} |`);
console.log(
  `| PyTorch ${torchRes.torch} eager, ${torchRes.threads} thread(s) | ${torchRes.seconds_per_step.toFixed(3)} | ${Math.round(torchRes.tokens_per_s)} |`,
);
console.log('');
console.log(`ratio ours / PyTorch = ${(oursTps / torchRes.tokens_per_s).toFixed(2)} (target ≥ 0.5)`);
