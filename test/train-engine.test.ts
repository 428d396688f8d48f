// Engine semantics: AdamW (PyTorch's, decoupled decay, bias correction), clipping, and gradient accumulation —
// on the float64 reference engine and on a device engine (js, and wasm when built).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { adamwHost, clipScale } from '../src/train/engine.ts';
import { createEngine } from '../src/train/engines.ts';
import { getPreset, type ModelConfig } from '../src/train/presets.ts';
import { initParams } from '../src/train/init.ts';
import { Rng } from '../src/train/rng.ts';

test('AdamW step 1: p ← p·(1 − lr·wd) − lr·g/(|g| + eps) (bias correction makes m̂ = g, v̂ = g²)', () => {
  const p = Float64Array.from([1, -2, 0.5]);
  const g = Float64Array.from([0.3, -0.01, 0]);
  const m = new Float64Array(3);
  const v = new Float64Array(3);
  const lr = 0.1,
    wd = 0.1,
    eps = 1e-8;
  adamwHost(p, g, m, v, { lr, beta1: 0.9, beta2: 0.95, eps, weightDecay: wd, step: 1, gradScale: 1 });
  const want = [
    1 * (1 - lr * wd) - lr * (0.3 / (0.3 + eps)),
    -2 * (1 - lr * wd) - lr * (-0.01 / (0.01 + eps)),
    0.5 * (1 - lr * wd),
  ];
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(p[i] - want[i]) < 1e-12, `p[${i}] = ${p[i]}, want ${want[i]}`);
  assert.ok(Math.abs(m[0] - 0.1 * 0.3) < 1e-15 && Math.abs(v[0] - 0.05 * 0.09) < 1e-15);
});

test('clip factor: PyTorch clip_grad_norm_ (clip/(norm + 1e-6), at most 1; 0 = off)', () => {
  assert.is(clipScale(0.5, 1), 1);
  assert.ok(Math.abs(clipScale(4, 1) - 1 / (4 + 1e-6)) < 1e-15);
  assert.is(clipScale(100, 0), 1);
});

// A dense model has no batch statistics, so two micro-batches of B accumulated must equal one batch of 2B.
const dense: ModelConfig = {
  ...getPreset('dense-small').config,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 24,
  max_position_embeddings: 16,
};

function batches(B: number, S: number): Int32Array[] {
  const r = new Rng(4);
  return [0, 1].map(() => Int32Array.from({ length: B * S }, () => r.int(256)));
}

for (const backend of ['reference', 'js', 'wasm'] as const) {
  test(`${backend}: 2 accumulated micro-batches of B = 1 step on the 2B batch (params, loss, norm)`, async () => {
    const B = 2,
      S = 8;
    const [b1, b2] = batches(B, S);
    const both = new Int32Array(2 * B * S);
    both.set(b1, 0);
    both.set(b2, B * S);
    const init = initParams(dense, 3);
    const hp = { lr: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 0.05, step: 1, alpha: 1 };
    const ea = (await createEngine(backend, { config: dense, ...init })).engine;
    const eb = (await createEngine(backend, { config: dense, ...init })).engine;
    const ra = (await ea.trainStep([b1, b2], B, S, hp, true))!;
    const rb = (await eb.trainStep([both], 2 * B, S, hp, true))!;
    const tol = backend === 'reference' ? 1e-12 : 2e-6; // float32 sums in a different order
    if (backend !== 'reference') {
      // the device-side clip factor (stepGuard) must equal PyTorch's clip/(norm + 1e-6) to float32 precision:
      // compare with the reference engine's parameters after the same step
      const er = (await createEngine('reference', { config: dense, ...init })).engine;
      await er.trainStep([both], 2 * B, S, hp, false);
      const pr = (await er.exportModel()).params;
      await er.dispose();
      const ec = (await createEngine(backend, { config: dense, ...init })).engine;
      await ec.trainStep([both], 2 * B, S, hp, false);
      const pc = (await ec.exportModel()).params;
      let w = 0;
      for (const [k, v] of pr) {
        const x = pc.get(k)!;
        for (let i = 0; i < v.length; i++) w = Math.max(w, Math.abs(v[i] - x[i]));
      }
      assert.ok(w <= 1e-5, `device clip vs reference: worst parameter difference ${w}`);
      await ec.dispose();
    }
    assert.ok(Math.abs(ra.loss - rb.loss) <= tol * Math.abs(rb.loss), `loss ${ra.loss} vs ${rb.loss}`);
    assert.ok(Math.abs(ra.gradNorm - rb.gradNorm) <= tol * 10 * rb.gradNorm, `norm ${ra.gradNorm} vs ${rb.gradNorm}`);
    assert.ok(rb.gradNorm > hp.clip, 'the clip must be active for this test to check it');
    const pa = (await ea.exportModel()).params;
    const pb = (await eb.exportModel()).params;
    let worst = 0;
    for (const [k, v] of pa) {
      const w = pb.get(k)!;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - w[i]));
    }
    assert.ok(worst <= (backend === 'reference' ? 1e-12 : 1e-6), `worst parameter difference ${worst}`);
    await ea.dispose();
    await eb.dispose();
  });
}

test.run();
