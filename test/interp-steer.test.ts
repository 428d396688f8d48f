// Steering: δ = 0 is a no-op; δ ≠ 0 equals raising the neuron's hidden activation by δ and recomputing down_proj.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { denseFfnForward } from '../reference/dense-ffn.ts';
import { initLm, lmForward } from '../reference/lm.ts';
import { Rng } from '../reference/rng.ts';
import { topkFfnForward } from '../reference/topk-ffn.ts';
import { interpForward, makeInterpModel, steerHooks, type FfnHooks, type InterpModel } from '../src/interp/model.ts';
import { sampleSteered } from '../src/interp/steer.ts';
import type { ModelConfig } from '../src/train/presets.ts';

const BASE = {
  vocab_size: 256,
  hidden_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 16,
  tie_word_embeddings: false,
  mode: 'eval' as const,
};
const DENSE: ModelConfig = { ...BASE, ffn: 'dense', intermediate_size: 10, activation: 'relu' };
const TOPK: ModelConfig = {
  ...BASE,
  ffn: 'topk',
  intermediate_size: 10,
  activation: 'relu',
  k: 3,
  alpha: 0,
  topk_placement: 'ffn',
  n_last_non_topk: 1,
};

function randomModel(config: ModelConfig, seed: number): InterpModel {
  const probe = makeInterpModel('test', config, {}, {});
  const { params, state } = initLm(probe.lm, new Rng(seed), 0.4);
  return makeInterpModel('test', config, params, state);
}

const tok = Int32Array.from([72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 33]);

for (const config of [DENSE, TOPK]) {
  test(`${config.ffn}: steering with δ = 0 leaves the logits bit-identical to the plain forward`, () => {
    const model = randomModel(config, 5);
    const plain = lmForward(model.lm, model.params, tok, 2, 6, model.state).logits;
    for (const [l, n] of [
      [0, 3],
      [1, 9],
    ]) {
      const steered = interpForward(model, tok, 2, 6, steerHooks(l, n, 0)).logits;
      assert.equal(Array.from(steered), Array.from(plain), `layer ${l} neuron ${n}`);
    }
  });

  test(`${config.ffn}: steering with δ = 0 samples exactly the unsteered text; δ ≠ 0 changes it`, () => {
    const model = randomModel(config, 6);
    const o = { prompt: 'ab', tokens: 12, temperature: 1, seed: 4 };
    // Unsteered reference sample: a hook on a layer that does not exist never fires.
    const base = sampleSteered(model, 99, 0, 0, o);
    assert.is(sampleSteered(model, 0, 4, 0, o), base);
    assert.is.not(sampleSteered(model, 0, 4, 200, o), base);
  });

  test(`${config.ffn}: δ on neuron n = hidden activation h[:, n] + δ pushed through down_proj`, () => {
    const model = randomModel(config, 7);
    const d = 8;
    const F = 10;
    const T = 12;
    for (const [layer, n, delta] of [
      [0, 2, 1.7],
      [1, 8, -0.6],
    ] as const) {
      let got: Float64Array | null = null;
      let want: Float64Array | null = null;
      const steer = steerHooks(layer, n, delta);
      const hooks: FfnHooks = {
        afterFfn(view, out, u) {
          steer.afterFfn(view, out, u);
          if (view.units.layer !== layer) return;
          got = Float64Array.from(out);
          // Independent: recompute the layer from its input with the reference layer code, add δ to h[:, n].
          const pre = `model.layers.${layer}.mlp.`;
          const up = model.params[`${pre}up_proj.weight`];
          const down = model.params[`${pre}down_proj.weight`]; // (d, F)
          const h = new Float64Array(T * F);
          if (config.ffn === 'topk' && layer === 0) {
            const s = topkFfnForward(
              new Float64Array(T * d),
              u,
              { 'up_proj.weight': up, 'down_proj.weight': down },
              { d, F, k: 3, alpha: 0 },
              T,
            );
            h.set(s.a);
          } else {
            h.set(
              denseFfnForward(new Float64Array(T * d), u, { gate: null, up, down }, { d, F, activation: 'relu' }, T).h,
            );
          }
          for (let t = 0; t < T; t++) h[t * F + n] += delta;
          want = new Float64Array(T * d);
          for (let t = 0; t < T; t++)
            for (let o = 0; o < d; o++) for (let f = 0; f < F; f++) want[t * d + o] += down[o * F + f] * h[t * F + f];
        },
      };
      interpForward(model, tok, 2, 6, hooks);
      let worst = 0;
      for (let i = 0; i < got!.length; i++) worst = Math.max(worst, Math.abs(got![i] - want![i]));
      assert.ok(worst < 1e-12, `layer ${layer} neuron ${n}: max abs diff ${worst}`);
    }
  });
}

test('steering an expert model is refused with the reason', () => {
  const config: ModelConfig = {
    ...BASE,
    ffn: 'smoe',
    intermediate_size: 6,
    num_experts: 4,
    top_k: 2,
    activation: 'swiglu',
    aux: { balance: 0.01, z: 0.001 },
  };
  const model = randomModel(config, 8);
  assert.throws(() => interpForward(model, tok, 2, 6, steerHooks(0, 1, 1)), /experts, not neurons/);
});

test.run();
