// Masking removes exactly the chosen units' contributions and nothing else.
//
// Two independent checks:
//   • Monet: the masked layer output equals Σ over the UNmasked composite experts of g_ij·E_ij(u), computed from
//     scratch with the naive expert view (monet-expert-view.ts) and the router forward (monet-router.ts).
//   • SMoE experts, dense/TopK neurons, PEER experts: removing a unit equals zeroing the weights through which only
//     that unit reaches the output (expert e's w2, column n of down_proj, row id of w_up) — the routing does not read
//     those weights, so the whole LM's logits must agree.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Params } from '../reference/common.ts';
import { lmForward } from '../reference/lm.ts';
import { initLm } from '../src/kinds/lm.ts';
import { compositeScore, monetExpertOutput, type MonetExperts } from '../reference/monet-expert-view.ts';
import type { MonetVdParams } from '../reference/monet-vd.ts';
import type { MonetHdParams } from '../reference/monet-hd.ts';
import { monetRouterForward, type MonetRouterParams } from '../reference/monet-router.ts';
import { Rng } from '../reference/rng.ts';
import { interpForward, makeInterpModel, maskHooks, type InterpModel, type UnitHooks } from '../src/interp/model.ts';
import { groupName, groupSlug, unitGroups } from '../src/interp/units.ts';
import type { ModelConfig } from '../src/train/presets.ts';

const BASE = {
  vocab_size: 13,
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

const MONET = (decompose: 'vertical' | 'horizontal'): ModelConfig => ({
  ...BASE,
  ffn: 'monet',
  moe_experts: 4,
  moe_heads: 2,
  moe_topk: 2,
  moe_dim: 4,
  moe_groups: 2,
  moe_decompose: decompose,
  hidden_act: 'relu2',
  aux: { unif: 1e-3, amb: 1e-3 },
  unif_eps: 1e-10,
  bn_eps: 1e-5,
  bn_momentum: 0.1,
});

/** A model with every weight (and bias, and Monet b) drawn N(0, 0.4²), norms 1, BN state mean 0.1 / var 1.3. */
function randomModel(config: ModelConfig, seed: number): InterpModel {
  const probe = makeInterpModel('test', config, {}, {});
  const { params, state } = initLm(probe.lm, new Rng(seed), 0.4);
  const rng = new Rng(seed + 1);
  for (const [k, v] of Object.entries(params))
    if (!/norm\.weight$|layernorm\.weight$/.test(k)) v.set(rng.normals(v.length, 0.4));
  for (const [k, v] of Object.entries(state)) v.fill(k.endsWith('mean') ? 0.1 : 1.3);
  return makeInterpModel('test', config, params, state);
}

function tokens(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * V));
}

function maxRel(a: Float64Array, b: Float64Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / Math.max(scale, 1e-300);
}

test('monet: one unit group per router; its experts act in every layer that shares the router', () => {
  const groups = unitGroups({ ...MONET('vertical'), num_hidden_layers: 5 });
  assert.equal(
    groups.map((g) => g.layers),
    [[0, 1], [2, 3], [4]],
  );
  assert.equal(
    groups.map((g) => [g.kind, g.count, g.router]),
    [
      ['monet', 16, 0],
      ['monet', 16, 1],
      ['monet', 16, 2],
    ],
  );
  // named by router, the trailing one-layer group too; with one layer per router the layer is the name
  assert.equal(groups.map(groupName), ['group 0 (layers 0–1)', 'group 1 (layers 2–3)', 'group 2 (layer 4)']);
  assert.equal(groups.map(groupSlug), ['g0', 'g1', 'g2']);
  const single = unitGroups({ ...MONET('vertical'), num_hidden_layers: 2, moe_groups: 1 });
  assert.equal(single.map(groupName), ['layer 0', 'layer 1']);
  assert.equal(single.map(groupSlug), ['l0', 'l1']);
});

// A few composite experts; then half of all pairs, so that a token's removed pairs share expert halves (the
// batched removal of src/interp/monet-removal.ts shares the work between them).
const REMOVALS = [
  { what: 'four experts', ids: [0 * 4 + 1, 2 * 4 + 2, 3 * 4 + 0, 1 * 4 + 3] },
  { what: 'half of the pairs, sharing halves', ids: Array.from({ length: 16 }, (_, id) => id).filter((id) => id % 3) },
];

for (const decompose of ['vertical', 'horizontal'] as const) {
  for (const removal of REMOVALS)
    test(`monet-${decompose}, ${removal.what}: masking = Σ of the unmasked g_ij·E_ij in each layer`, () => {
      const config = MONET(decompose); // 2 layers, moe_groups 2: one router, one unit group covering layers 0 and 1
      const model = randomModel(config, 7);
      const B = 2;
      const S = 6;
      const T = B * S;
      const { d } = model.lm;
      const E = 4;
      const H = 2;
      const m = 4;
      // composite experts chosen so that some fire for the batch and some may not
      const remove = new Set(removal.ids);
      const got: Float64Array[] = [];
      const uIn: Float64Array[] = [];
      const mask = maskHooks([remove]);
      const hooks: UnitHooks = {
        atSite(view, out) {
          uIn[view.layer] = Float64Array.from(view.input!);
          mask.atSite(view, out);
          got[view.layer] = Float64Array.from(out);
        },
      };
      interpForward(model, tokens(T, 13, 3), B, S, hooks);
      // Independent: routing from the router forward on layer 0's input (the router reads the group's first layer),
      // experts from the naive expert view, per layer.
      const g1 = new Float64Array(T * H * E);
      const g2 = new Float64Array(T * H * E);
      const rp: MonetRouterParams = {
        'w1.weight': model.params['model.layers.0.router.w1.weight'],
        'w2.weight': model.params['model.layers.0.router.w2.weight'],
      };
      const st = {
        'norm1.running_mean': model.state['model.layers.0.router.norm1.running_mean'],
        'norm1.running_var': model.state['model.layers.0.router.norm1.running_var'],
        'norm2.running_mean': model.state['model.layers.0.router.norm2.running_mean'],
        'norm2.running_var': model.state['model.layers.0.router.norm2.running_var'],
      };
      monetRouterForward(
        g1,
        g2,
        uIn[0],
        rp,
        st,
        null,
        { T, d, H, E },
        { topk: 2, mode: 'eval', bnEps: 1e-5, bnMomentum: 0.1 },
      );
      for (const layer of [0, 1]) {
        const p: Params = {};
        const pre = `model.layers.${layer}.moe.`;
        for (const [k, v] of Object.entries(model.params)) if (k.startsWith(pre)) p[k.slice(pre.length)] = v;
        const experts: MonetExperts =
          decompose === 'vertical'
            ? { decompose, params: p as MonetVdParams }
            : { decompose, params: p as MonetHdParams };
        const want = new Float64Array(T * d);
        const full = new Float64Array(T * d);
        const e = new Float64Array(d);
        let removedActive = 0;
        for (let t = 0; t < T; t++) {
          for (let i = 0; i < E; i++) {
            for (let j = 0; j < E; j++) {
              const gij = compositeScore(g1, g2, t, i, j, H, E);
              if (gij === 0) continue;
              monetExpertOutput(e, uIn[layer].subarray(t * d, (t + 1) * d), i, j, experts, { T, d, H, E, m });
              for (let o = 0; o < d; o++) full[t * d + o] += gij * e[o];
              if (remove.has(i * E + j)) {
                removedActive++;
                continue;
              }
              for (let o = 0; o < d; o++) want[t * d + o] += gij * e[o];
            }
          }
        }
        assert.ok(removedActive > 0, 'the masked experts must be active somewhere, else the test shows nothing');
        assert.ok(
          maxRel(got[layer], want) < 1e-12,
          `layer ${layer}: masked output vs naive sum: rel ${maxRel(got[layer], want)}`,
        );
        assert.ok(maxRel(got[layer], full) > 1e-6, `layer ${layer}: masking must change the output`);
      }
    });
}

test('monet: an empty mask leaves the logits bit-identical to the plain reference forward', () => {
  const model = randomModel(MONET('vertical'), 11);
  const tok = tokens(12, 13, 5);
  const plain = lmForward(model.lm, model.params, tok, 2, 6, model.state).logits;
  const masked = interpForward(model, tok, 2, 6, maskHooks([new Set()])).logits;
  assert.equal(Array.from(masked), Array.from(plain));
});

/** Logits with unit u of layer l masked vs logits of a copy of the model with `zero` applied to its weights. */
function maskVsZeroed(
  config: ModelConfig,
  layer: number,
  unit: number,
  zero: (p: Params) => void,
  seed = 3,
): { masked: Float64Array; zeroed: Float64Array; plain: Float64Array } {
  const f64 = (a: Float64Array | Float32Array) => a as Float64Array; // the reference forward: float64
  const model = randomModel(config, seed);
  const tok = tokens(14, 13, seed + 10);
  const remove = model.groups.map(() => new Set<number>());
  remove[layer].add(unit); // one unit group per layer for these kinds
  const masked = f64(interpForward(model, tok, 2, 7, maskHooks(remove)).logits);
  const plain = f64(interpForward(model, tok, 2, 7).logits);
  const p2: Params = {};
  for (const [k, v] of Object.entries(model.params)) p2[k] = Float64Array.from(v);
  zero(p2);
  const zeroed = f64(interpForward({ ...model, params: p2 }, tok, 2, 7).logits);
  return { masked, zeroed, plain };
}

test('smoe: masking expert e = zeroing its w2 (the router does not read expert weights)', () => {
  const config: ModelConfig = {
    ...BASE,
    ffn: 'smoe',
    intermediate_size: 6,
    num_experts: 4,
    top_k: 2,
    activation: 'swiglu',
    aux: { balance: 0.01, z: 0.001 },
  };
  for (const [layer, e] of [
    [0, 1],
    [1, 3],
  ] as const) {
    const r = maskVsZeroed(config, layer, e, (p) =>
      p[`model.layers.${layer}.block_sparse_moe.experts.${e}.w2.weight`].fill(0),
    );
    assert.ok(maxRel(r.masked, r.zeroed) < 1e-12, `smoe layer ${layer} expert ${e}: ${maxRel(r.masked, r.zeroed)}`);
    assert.ok(maxRel(r.masked, r.plain) > 1e-6, 'masking must change the logits');
  }
});

test('dense and topk: masking neuron n = zeroing column n of down_proj', () => {
  const dense: ModelConfig = { ...BASE, ffn: 'dense', intermediate_size: 10, activation: 'swiglu' };
  const topk: ModelConfig = {
    ...BASE,
    ffn: 'topk',
    intermediate_size: 10,
    activation: 'relu',
    k: 3,
    alpha: 0,
    topk_placement: 'ffn',
    n_last_non_topk: 1,
  };
  for (const config of [dense, topk]) {
    for (const [layer, n] of [
      [0, 2],
      [1, 7],
    ] as const) {
      const r = maskVsZeroed(config, layer, n, (p) => {
        const W = p[`model.layers.${layer}.mlp.down_proj.weight`]; // (d, F)
        for (let o = 0; o < 8; o++) W[o * 10 + n] = 0;
      });
      assert.ok(
        maxRel(r.masked, r.zeroed) < 1e-12,
        `${config.ffn} layer ${layer} neuron ${n}: ${maxRel(r.masked, r.zeroed)}`,
      );
      if (config.ffn === 'dense') assert.ok(maxRel(r.masked, r.plain) > 1e-6, 'masking must change the logits');
    }
  }
});

test('peer: masking expert id = zeroing row id of w_up', () => {
  const config: ModelConfig = {
    ...BASE,
    ffn: 'peer',
    intermediate_size: 6,
    activation: 'gelu',
    peer_layers: [1],
    num_experts: 16,
    heads: 2,
    top_k: 2,
    key_dim: 4,
    bn_eps: 1e-5,
    bn_momentum: 0.1,
  };
  // Find an expert that is retrieved for this batch, so the test shows something.
  const model = randomModel(config, 3);
  const seen = new Set<number>();
  interpForward(model, tokens(14, 13, 13), 2, 7, {
    atSite: (v) => v.group.kind === 'peer' && v.visitScores((_t, u) => seen.add(u)),
  });
  const id = Math.min(...seen);
  const r = maskVsZeroed(config, 1, id, (p) => p['model.layers.1.mlp.w_up'].fill(0, id * 8, (id + 1) * 8));
  assert.ok(maxRel(r.masked, r.zeroed) < 1e-12, `peer expert ${id}: ${maxRel(r.masked, r.zeroed)}`);
  assert.ok(maxRel(r.masked, r.plain) > 1e-6, 'masking must change the logits');
});

test('topk hidden: units are the residual dimensions after TopK (≤ k non-zero per token); masking zeroes one', () => {
  const config: ModelConfig = {
    ...BASE,
    ffn: 'topk',
    intermediate_size: 10,
    activation: 'relu',
    k: 3,
    alpha: 0,
    topk_placement: 'hidden',
    n_last_non_topk: 1,
  };
  const model = randomModel(config, 4);
  assert.equal(
    model.groups.map((g) => [g.kind, g.count, g.layers, g.site]),
    [
      ['hidden', 8, [0], 'hidden'],
      ['dense', 10, [1], 'ffn'],
    ],
  );
  const tok = tokens(14, 13, 21);
  const perToken = new Array<number>(14).fill(0);
  let plainStream: Float64Array | null = null;
  interpForward(model, tok, 2, 7, {
    atSite(v, out) {
      if (v.group.kind !== 'hidden') return;
      v.visitScores((t) => perToken[t]++);
      plainStream = Float64Array.from(out);
    },
  });
  // TopK keeps k = 3 dimensions and ReLU zeroes the negative ones among them
  assert.ok(perToken.every((n) => n <= 3) && perToken.some((n) => n > 0), `non-zero per token: ${perToken}`);
  const n = [...plainStream!.keys()].find((i) => plainStream![i] !== 0)! % 8; // a dimension that fires somewhere
  let maskedStream: Float64Array | null = null;
  const mask = maskHooks([new Set([n]), new Set()]);
  const masked = interpForward(model, tok, 2, 7, {
    atSite(v, out) {
      mask.atSite(v, out);
      if (v.group.kind === 'hidden') maskedStream = Float64Array.from(out);
    },
  }).logits;
  for (let i = 0; i < plainStream!.length; i++)
    assert.is(maskedStream![i], i % 8 === n ? 0 : plainStream![i], `stream element ${i}`);
  const plain = interpForward(model, tok, 2, 7).logits;
  assert.ok(maxRel(masked as Float64Array, plain as Float64Array) > 1e-6, 'masking must change the logits');
});

test.run();
