// The trajectory test (as llm.c's test_gpt2): the same tiny Monet-VD model, the same seed and the same batches, 10
// AdamW steps on every backend. Per-step losses must agree with the float64 reference, and the step-0 gradients are
// compared tensor by tensor with the fixture checker (f32 preset).
//
// Tolerance for the losses: |loss_backend − loss_reference| ≤ 1e-4·|loss_reference| at every step. float32 kernels
// against the float64 reference differ by ~1e-7 relative per forward (the js device measures 5e-8 here); ten steps
// of AdamW compound that (each update moves weights by ~lr, so a 1e-7 relative gradient error stays ~1e-7 in the
// weights), and 1e-4 leaves room for different summation orders in SIMD and GPU kernels. A Monet routing decision
// flipping between float32 and float64 would show as a jump far above that; the batches were checked to keep the
// routing margin of step 0 at ≥ 1e-3 (printed below), as the fixtures require.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getPreset } from '../src/train/presets.ts';
import { initParams } from '../src/train/init.ts';
import { createEngine } from '../src/train/engines.ts';
import { BatchSampler, tokenizeDocs } from '../src/train/data.ts';
import { loadBrown } from '../src/train/corpus.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';
import { lmForward } from '../reference/lm.ts';
import { lmMargin } from '../src/fixtures/margins.ts';
import { parseLm } from '../src/kinds/lm.ts';
import { checkCase, formatReports } from '../src/fixtures/checker.ts';
import type { TensorMap } from '../src/tensor.ts';
import type { HostParams } from '../src/train/checkpoint.ts';
import type { StepHyper } from '../src/train/engine.ts';
import { backendTest } from './webgpu-setup.ts';

const STEPS = 10;
const B = 4;
const S = 16;
const REL_TOL = 1e-4;
const config = getPreset('tiny').config;
const { params, state } = initParams(config, 5);
const tokens = tokenizeDocs(loadBrown().train.slice(0, 3), new ByteTokenizer()).tokens;
const sampler = new BatchSampler(tokens, B, S, 9);
const batches = Array.from({ length: STEPS }, () => sampler.next());
const hp = (i: number): StepHyper => ({
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1,
  step: i + 1,
  alpha: 1,
});

/** Losses of the 10 steps (NaN where not read: with `readEvery` > 1 only every readEvery-th step is read back). */
async function trajectory(
  backend: 'reference' | 'js' | 'wasm' | 'webgpu',
  readEvery = 1,
): Promise<{ losses: number[]; grads0: HostParams; name: string }> {
  const { engine } = await createEngine(backend, { config, params, state });
  try {
    const losses: number[] = [];
    let grads0: HostParams = new Map();
    for (let i = 0; i < STEPS; i++) {
      const want = (i + 1) % readEvery === 0;
      const r = await engine.trainStep([batches[i]], B, S, hp(i), want);
      assert.ok(
        want || backend === 'reference' || r === null,
        `${backend}: step ${i + 1} returned a result without being asked`,
      );
      losses.push(want ? r!.loss : NaN);
      if (i === 0) grads0 = await engine.gradients();
    }
    return { losses, grads0, name: engine.name };
  } finally {
    await engine.dispose();
  }
}

let ref: { losses: number[]; grads0: HostParams } | undefined;

test('step 0 routes with a margin ≥ 1e-3, and the reference loss goes down over 10 steps', async () => {
  const m = parseLm({ ...config }, 'trajectory');
  const p = Object.fromEntries([...params].map(([k, v]) => [k, Float64Array.from(v)]));
  const st = Object.fromEntries([...state].map(([k, v]) => [k.replace(/^state\./, ''), Float64Array.from(v)]));
  const margin = lmMargin(m, p, lmForward(m, p, batches[0], B, S, st));
  console.log(`  trajectory: step-0 routing margin ${margin.toExponential(2)}`);
  assert.ok(margin >= 1e-3, `margin ${margin}`);
  ref = await trajectory('reference');
  console.log(`  reference losses: ${ref.losses.map((x) => x.toFixed(5)).join(' ')}`);
  assert.ok(ref.losses[STEPS - 1] < ref.losses[0] - 0.5);
});

// The clip factor and the skip decision are taken on the device (stepGuard, engine-device.ts): reading the loss at
// every step or only every 5th must give the same trajectory. The clip (1.0) is active in 9 of the 10 steps
// (gradient norms 0.95 – 2.1).
for (const backend of ['js', 'wasm', 'webgpu'] as const) {
  for (const readEvery of [1, 5]) {
    const mode = readEvery === 1 ? 'read every step' : 'read every 5 steps';
    backendTest(backend)(
      `${backend} (${mode}): 10-step losses match the reference within ${REL_TOL} relative; step-0 gradients ` +
        `pass the f32 checker`,
      async () => {
        const run = await trajectory(backend, readEvery);
        const worst = Math.max(
          ...run.losses.map((l, i) => Math.abs(l - ref!.losses[i]) / Math.abs(ref!.losses[i])).filter(Number.isFinite),
        );
        console.log(
          `  ${run.name} (${mode}): worst per-step relative loss difference ${worst.toExponential(2)} (tolerance ` +
            `${REL_TOL})`,
        );
        assert.is(run.losses.filter(Number.isFinite).length, STEPS / readEvery);
        for (const [i, l] of run.losses.entries())
          assert.ok(
            readEvery > 1 && (i + 1) % readEvery !== 0
              ? Number.isNaN(l)
              : Math.abs(l - ref!.losses[i]) <= REL_TOL * Math.abs(ref!.losses[i]),
            `step ${i}: ${l} vs ${ref!.losses[i]}`,
          );
        const expected: TensorMap = new Map();
        const actual: TensorMap = new Map();
        for (const [k, v] of ref!.grads0)
          expected.set(`grad.param.${k}`, { dtype: 'F64', shape: [v.length], data: v as Float64Array });
        for (const [k, v] of run.grads0)
          actual.set(`grad.param.${k}`, { dtype: 'F32', shape: [v.length], data: v as Float32Array });
        // K: the longest reduction of a step — the vocabulary (256), above T = 64 tokens and every parameter dimension.
        const report = checkCase(expected, actual, {
          source: 'trajectory step 0',
          kind: 'lm',
          backend: run.name,
          preset: 'f32',
          reduction: config.vocab_size,
        });
        if (!report.pass) console.log(formatReports([report], { failuresOnly: true }));
        assert.ok(report.pass, `${run.name}: step-0 gradients outside the f32 preset`);
      },
    );
  }
}

test.run();
