// Steering: δ = 0 is a no-op; δ ≠ 0 equals raising the neuron's hidden activation by δ and recomputing down_proj.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { denseFfnForward } from '../reference/dense-ffn.ts';
import { lmForward } from '../reference/lm.ts';
import { initLm } from '../src/kinds/lm.ts';
import { Rng } from '../reference/rng.ts';
import { topkFfnForward } from '../reference/topk-ffn.ts';
import { interpForward, makeInterpModel, steerHooks, type InterpModel, type UnitHooks } from '../src/interp/model.ts';
import { firstDivergence, sampleSteered, steerDelta, type SteerTarget } from '../src/interp/steer.ts';
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
    const base = sampleSteered(model, null, o);
    assert.is(sampleSteered(model, { group: 0, neuron: 4, delta: 0 }, o), base);
    assert.is.not(sampleSteered(model, { group: 0, neuron: 4, delta: 200 }, o), base);
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
      const hooks: UnitHooks = {
        atSite(view, out) {
          steer.atSite(view, out);
          if (view.layer !== layer) return;
          const u = view.input!;
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

test('steering refuses a neuron that never fired when δ comes from its activations; warns when δ is given', () => {
  // only the two fields steering reads
  const summary = (fires: number, maxScore: number) => ({ fires, maxScore }) as SteerTarget['summary'];
  const t = (fires: number, maxScore: number): SteerTarget => ({
    group: 1,
    neuron: 13,
    name: '',
    why: '',
    summary: summary(fires, maxScore),
  });
  assert.throws(
    () => steerDelta(t(0, 0), 'layer 1', 11520, { scale: 10 }),
    /layer 1 neuron 13 never fired on the 11,520 analysed positions.*δ = 10 × its largest activation would be 0/,
  );
  const given = steerDelta(t(0, 0), 'layer 1', 11520, { delta: 5, scale: 10 });
  assert.is(given.delta, 5);
  assert.match(given.warning!, /^WARNING: layer 1 neuron 13 never fired/);
  const ok = steerDelta(t(40, 2.5), 'layer 1', 11520, { scale: 3 });
  assert.equal(ok, { delta: 7.5, warning: null });
});

test('firstDivergence: common prefix length in characters, null when equal', () => {
  assert.is(firstDivergence('The cat', 'The cat'), null);
  assert.is(firstDivergence('The cat', 'The dog'), 4);
  assert.is(firstDivergence('The', 'The end'), 3);
  assert.is(firstDivergence('é1', 'é2'), 1, 'counted in characters, not UTF-16 units or bytes');
});

test.run();
