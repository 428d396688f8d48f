// First-order unit effects (src/interp/attribution.ts) and the effect selection rule.
//
//   • unitEffects against central finite differences: scaling unit u's contribution by (1 − ε) at every layer of its
//     group and measuring the next-token loss of each label's windows through the whole LM; the derivative at ε = 0
//     is what unitEffects estimates. Aux-loss coefficients are set large, so a backward that let them in would fail.
//   • effectSpecificUnits on a hand-made table: order, the positivity conditions, ties, K.
//   • maskExperiment --select effect masks exactly those units, at most K per group.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../reference/rng.ts';
import { initLm } from '../src/kinds/lm.ts';
import { effectSpecificUnits, unitEffects } from '../src/interp/attribution.ts';
import { collect, lossByLabel } from '../src/interp/collect.ts';
import type { AnalysisText } from '../src/interp/data.ts';
import { maskExperiment, specificUnitsByLabel } from '../src/interp/mask.ts';
import { interpForward, makeInterpModel, type InterpModel, type UnitHooks } from '../src/interp/model.ts';
import type { ModelConfig } from '../src/train/presets.ts';

const BASE = {
  vocab_size: 11,
  hidden_size: 8,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 16,
  tie_word_embeddings: false,
  mode: 'eval' as const,
};

const CONFIGS: Array<[string, ModelConfig]> = [
  [
    // 3 layers, moe_groups 2: group 0 covers layers 0–1, group 1 (layer 2) routes on what group 0 wrote
    'monet-vd',
    {
      ...BASE,
      ffn: 'monet',
      moe_experts: 4,
      moe_heads: 2,
      moe_topk: 2,
      moe_dim: 4,
      moe_groups: 2,
      moe_decompose: 'vertical',
      hidden_act: 'relu2',
      aux: { unif: 1, amb: 1 },
      unif_eps: 1e-10,
      bn_eps: 1e-5,
      bn_momentum: 0.1,
    },
  ],
  ['dense', { ...BASE, ffn: 'dense', intermediate_size: 10, activation: 'swiglu' }],
  [
    'topk hidden',
    {
      ...BASE,
      ffn: 'topk',
      intermediate_size: 10,
      activation: 'relu',
      k: 4,
      alpha: 0,
      topk_placement: 'hidden',
      n_last_non_topk: 1,
    },
  ],
  [
    'smoe',
    {
      ...BASE,
      ffn: 'smoe',
      intermediate_size: 6,
      num_experts: 4,
      top_k: 2,
      activation: 'swiglu',
      aux: { balance: 1, z: 1 },
    },
  ],
];

function randomModel(config: ModelConfig, seed: number): InterpModel {
  const probe = makeInterpModel('test', config, {}, {});
  const { params, state } = initLm(probe.lm, new Rng(seed), 0.4);
  for (const [k, v] of Object.entries(state)) v.fill(k.endsWith('mean') ? 0.05 : 1.2);
  return makeInterpModel('test', config, params, state);
}

/** W windows of S random tokens, labels 'a' / 'b' alternating in blocks (the first half 'a'). */
function randomText(W: number, S: number, V: number, seed: number): AnalysisText {
  const rng = new Rng(seed);
  return {
    S,
    labels: ['a', 'b'],
    tagSet: null,
    tags: [''],
    windows: W,
    tokens: Int32Array.from({ length: W * S }, () => Math.floor(rng.uniform() * V)),
    tokenTags: new Uint16Array(W * S),
    windowLabel: Int32Array.from({ length: W }, (_, w) => (w < W / 2 ? 0 : 1)),
    windowDoc: Array.from({ length: W }, (_, w) => `doc${w}`),
  };
}

/** Loss per label with unit u of group gi scaled by (1 − eps) in every layer of its group. */
function scaledLoss(model: InterpModel, text: AnalysisText, gi: number, u: number, eps: number): Float64Array {
  const hooks: UnitHooks = {
    atSite(view, out) {
      if (view.group.group !== gi) return;
      const c = new Float64Array(view.d);
      for (let t = 0; t < view.T; t++) {
        c.fill(0);
        view.addContribution(c, t, u);
        for (let o = 0; o < view.d; o++) out[t * view.d + o] -= eps * c[o];
      }
    },
  };
  return lossByLabel(text, interpForward(model, text.tokens, text.windows, text.S, hooks).nll);
}

for (const [name, config] of CONFIGS) {
  test(`unitEffects (${name}) = d loss / d(removed share of the unit), by central differences`, () => {
    const model = randomModel(config, 5);
    const text = randomText(4, 7, BASE.vocab_size, 9);
    const { effect } = unitEffects(model, text);
    assert.is(effect.length, model.groups.length);
    // the three largest effects of each group, on either label
    let checked = 0;
    for (const [gi, grp] of model.groups.entries()) {
      const order = Array.from({ length: grp.count }, (_, u) => u).sort(
        (a, b) =>
          Math.max(Math.abs(effect[gi][b * 2]), Math.abs(effect[gi][b * 2 + 1])) -
          Math.max(Math.abs(effect[gi][a * 2]), Math.abs(effect[gi][a * 2 + 1])),
      );
      for (const u of order.slice(0, 3)) {
        const eps = 1e-5;
        const up = scaledLoss(model, text, gi, u, eps);
        const down = scaledLoss(model, text, gi, u, -eps);
        for (let g = 0; g < 2; g++) {
          const fd = (up[g] - down[g]) / (2 * eps);
          const got = effect[gi][u * 2 + g];
          assert.ok(
            Math.abs(fd - got) <= 1e-6 + 1e-5 * Math.abs(fd),
            `${name} group ${gi} unit ${u} label ${g}: effect ${got} vs finite difference ${fd}`,
          );
          if (Math.abs(fd) > 1e-4) checked++;
        }
      }
    }
    assert.ok(checked >= 2, `${name}: at least two non-trivial effects compared, found ${checked}`);
  });
}

test('effectSpecificUnits: largest effect on the label beyond the mean on the others, positive only, top K', () => {
  // U = 6 units × G = 3 labels, row-major
  const e = Float64Array.from(
    [
      [0.5, 0.1, 0.1], // u0: 0.5 − 0.1 = 0.4
      [0.9, 0.8, 0.8], // u1: 0.1 (busy everywhere: a small specific effect)
      [0.45, -0.1, 0.0], // u2: 0.45 + 0.05 = 0.5
      [-0.1, -0.5, -0.5], // u3: specific +0.4, but removing it helps the label: excluded
      [0.2, 0.3, 0.0], // u4: 0.05
      [0.5, 0.1, 0.1], // u5: ties u0
    ].flat(),
  );
  assert.equal(effectSpecificUnits(e, 6, 3, 0, 1), [2]);
  assert.equal(effectSpecificUnits(e, 6, 3, 0, 2), [0, 2]); // u0 before u5 on the tie
  assert.equal(effectSpecificUnits(e, 6, 3, 0, 3), [0, 2, 5]);
  assert.equal(effectSpecificUnits(e, 6, 3, 0, 99), [0, 1, 2, 4, 5]);
  assert.equal(effectSpecificUnits(e, 6, 3, 0, 0), []);
  assert.equal(effectSpecificUnits(e, 6, 3, 0, 99, new Set([1, 4, 5])), [1, 4, 5]); // only the allowed units
  // label 1: only u4 (0.3 − 0.35 < 0 for u0? no: 0.3 − (0.2 + 0)/2 = 0.2 > 0); u1: 0.8 − 0.85 < 0
  assert.equal(effectSpecificUnits(e, 6, 3, 1, 99), [4]);
  assert.throws(() => effectSpecificUnits(e, 5, 3, 0, 1), /expected 5·3 = 15 effects, found 18/);
  assert.throws(() => effectSpecificUnits(e, 6, 3, 3, 1), /label 3 out of range/);
  assert.throws(() => effectSpecificUnits(e, 6, 3, 0, -1), /expected K ≥ 0/);
});

test('maskExperiment --select effect: masks the effect rule units among those leaning to the label, ≤ K', () => {
  const model = randomModel(CONFIGS[0][1], 5);
  const sel = randomText(4, 7, BASE.vocab_size, 9);
  const ev = randomText(4, 7, BASE.vocab_size, 10);
  const K = 3;
  const res = maskExperiment(model, sel, ev, { select: 'effect', units: K, draws: 2 });
  assert.is(res.select, 'effect');
  assert.is(res.factor, 1.25, 'the effect rule keeps units leaning ≥ 1.25× to the label by default');
  assert.equal(res.perGroup, [K, K]);
  const { effect } = unitEffects(model, sel);
  const leaning = specificUnitsByLabel(collect(model, sel, 1), 1.25);
  let filtered = 0; // (label, group) pairs where the lean filter changed the choice
  for (const [g, row] of res.rows.entries()) {
    const want = model.groups.map((grp, gi) => effectSpecificUnits(effect[gi], grp.count, 2, g, K, leaning[g][gi]));
    assert.equal(
      row.unitsPerGroup,
      want.map((x) => x.length),
      `label ${row.label}`,
    );
    for (const n of row.unitsPerGroup) assert.ok(n <= K);
    for (const [gi, grp] of model.groups.entries())
      if (effectSpecificUnits(effect[gi], grp.count, 2, g, K).join() !== want[gi].join()) filtered++;
  }
  assert.ok(filtered > 0, 'the lean filter must change some choice, else the test does not show it is applied');
  assert.ok(
    res.rows.some((r) => r.unitsPerGroup.some((n) => n > 0)),
    'some label must get units, else the test shows nothing',
  );
  assert.throws(() => maskExperiment(model, sel, ev, { select: 'effect', units: 17 }), /exceeds the 16 units/);
});

test.run();
