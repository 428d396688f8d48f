// The memory guard counts what a model needs — parameters, gradients and moments, activations, and one JS object per
// parameter tensor — from its config in closed form and refuses before allocating: in monet train (flags), and in
// monet sample / eval / train --resume on a hand-edited run folder. Each case runs as a child process with a small
// JS heap (512 MB) and a time limit, so that a regression is an "out of memory" exit (134) or a timeout here, not a
// test runner that dies.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimateMemory } from '../src/train/memory.ts';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { getPreset } from '../src/train/presets.ts';
import { train } from '../src/train/trainer.ts';
import { CHECKSUM_KEY, sealedJson } from '../src/validate.ts';

const ROOT = join(import.meta.dirname, '..');
const root = mkdtempSync(join(tmpdir(), 'monet-memory-'));
const textFile = join(root, 'text.txt');
writeFileSync(textFile, Array.from({ length: 300 }, (_, i) => `x y z ${i % 7}.`).join('\n'));

function monet(...args: string[]): { code: number | null; err: string; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--max-old-space-size=512', join(ROOT, 'bin/monet.mjs'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, err: r.stderr, seconds: (performance.now() - t0) / 1000 };
}

// The command: 4,096 layers × 65,536 experts of width 1 (8.6 billion parameters in 805 million tensors).
const HUGE = ['--ffn', 'smoe', '--layers', '4096', '--num-experts', '65536', '--intermediate-size', '1'];

test('monet train: a model that cannot fit is refused with its sizes before anything is allocated', () => {
  const r = monet('train', ...HUGE, '--hidden-size', '8', '--heads', '2', '--runs-dir', root, '--name', 'huge');
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /monet train: the model has 8,591\.1M parameters; training it needs at least [\d.]+ GiB/);
  assert.match(r.err, /805,335,043 parameter tensors need about [\d.]+ GiB of JavaScript objects/);
  assert.match(r.err, /Nothing was allocated; pick a smaller/);
  assert.not.ok(existsSync(join(root, 'huge')), 'no run folder');
});

test('the estimate counts activations: a small model with an absurd batch is refused too', () => {
  const e = estimateMemory(getPreset('tiny').config, { purpose: 'train', backend: 'wasm', batch: 16, seq: 16 });
  assert.ok(e.bytes.activations > 0 && e.bytes.optimizer === 3 * 4 * e.params, JSON.stringify(e.bytes));
  const args = ['--preset', 'tiny', '--seq-len', '16', '--batch-size', '100000000', '--runs-dir', root];
  const r = monet('train', ...args, '--name', 'batch');
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /activations of 100000000 × 16 tokens [\d.]+ GiB/);
});

test('a hand-edited run folder: sample, eval and --resume refuse before allocating', async () => {
  const f = parseFlags('train', TRAIN_FLAGS, [
    ...['--preset', 'tiny', '--backend', 'reference', '--data', textFile, '--runs-dir', root, '--name', 'good'],
    ...['--batch-size', '2', '--seq-len', '16', '--steps', '2', '--eval-batches', '1', '--sample-tokens', '0'],
  ]);
  const { preset, config } = resolveModel(f);
  await train(resolveTrainOptions(f, preset, 'good'), config, false, { out: { write: () => true } });
  const forge = (name: string, file: string, change: (v: Record<string, unknown>) => void) => {
    const d = join(root, name);
    cpSync(join(root, 'good'), d, { recursive: true });
    const { [CHECKSUM_KEY]: _old, ...v } = JSON.parse(readFileSync(join(d, file), 'utf8'));
    change(v);
    writeFileSync(join(d, file), sealedJson(v));
    return d;
  };
  // config.json asking for 805 million tensors (checksum recomputed: a deliberate edit, not damage)
  const big = forge('edited-config', 'config.json', (v) => {
    Object.assign(v, { ffn: 'smoe', num_hidden_layers: 4096, num_experts: 65536, intermediate_size: 1 });
    Object.assign(v, { top_k: 2, activation: 'swiglu', aux: { balance: 0.01, z: 0.001 } });
    for (const k of ['moe_experts', 'moe_heads', 'moe_topk', 'moe_dim', 'moe_groups', 'moe_decompose']) delete v[k];
    for (const k of ['hidden_act', 'unif_eps', 'bn_eps', 'bn_momentum']) delete v[k];
  });
  for (const cmd of ['sample', 'eval']) {
    const r = monet(cmd, '--checkpoint', big, '--backend', 'wasm');
    assert.is(r.code, 1, `${cmd}: ${r.err}`);
    assert.match(r.err, /model\.safetensors has no tensor '[^']+' \(a parameter of a smoe model per config\.json\)/);
    assert.ok(r.seconds < 30, `${cmd} took ${r.seconds} s`);
  }
  const resumed = monet('train', '--runs-dir', root, '--name', 'edited-config', '--resume', '--steps', '4');
  assert.is(resumed.code, 1, resumed.err);
  assert.match(resumed.err, /has no tensor/);
  // run.json asking eval for a batch no machine holds
  const batch = forge('edited-run', 'run.json', (v) => {
    (v.options as Record<string, unknown>).batchSize = 1e9;
  });
  const r = monet('eval', '--checkpoint', batch, '--backend', 'wasm');
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /monet eval: the model has [\d.]+K parameters; evaluating it needs at least [\d.]+ GiB/);
});

test.after(() => rmSync(root, { recursive: true, force: true }));

test.run();
