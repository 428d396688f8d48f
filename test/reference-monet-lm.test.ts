// Monet inside the reference LM: router groups (a router only where i % moe_groups == 0, reused by the next layers,
// gradients of the whole group summed into it), aux losses once per router averaged over routers, checkpoint names,
// finite differences for every parameter with two full groups; and the parameter accounting that docs/monet.md and
// docs/peer.md quote, computed from the same declarations (src/kinds/) the reference is run with.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { zerosLike, type Params } from '../reference/common.ts';
import { lmBackward, lmForward, type LmConfig } from '../reference/lm.ts';
import { Rng } from '../reference/rng.ts';
import { drawWithMargin, lmMargin } from '../src/fixtures/margins.ts';
import { TINY_LM_BASE } from '../src/kinds/examples.ts';
import { initLm, lmParams, lmState, parseLm } from '../src/kinds/lm.ts';
import { monetHdTable, monetRouterParams, monetVdTable } from '../src/kinds/monet.ts';
import { peerParams } from '../src/kinds/peer.ts';

type Config = Record<string, unknown>;
const buildLm = parseLm;
const lmParamSpecs = (m: LmConfig) => [...lmParams(m)];
const lmStateSpecs = (m: LmConfig) => [...lmState(m)];
const monetVdParamSpecs = (c: { d: number; E: number; m: number }) => Object.values(monetVdTable(c));
const monetHdParamSpecs = (c: { d: number; E: number; m: number }) => Object.values(monetHdTable(c));
const monetRouterParamSpecs = monetRouterParams;
const peerParamSpecs = peerParams;
import { checkGrads } from './fd-helpers.ts';

const [B, S] = [2, 4];

const monetCfg = (decompose: 'vertical' | 'horizontal', extra: Config = {}): Config => ({
  ...TINY_LM_BASE,
  num_hidden_layers: 4, // two full groups of 2: routers on layers 0 and 2
  ffn: 'monet',
  // moe_topk 2 of 4 (sigma = 0): most (token, head) rows select several experts, so the softmax gradients are
  // rarely the trivial one-hot zero
  moe_experts: 4,
  moe_heads: 2,
  moe_topk: 2,
  moe_dim: 4,
  moe_groups: 2,
  moe_decompose: decompose,
  hidden_act: 'relu2',
  aux: { unif: 0.3, amb: 0.2 },
  unif_eps: 1e-10,
  bn_eps: 1e-5,
  bn_momentum: 0.1,
  ...extra,
});

function drawModel(m: LmConfig, rng: Rng): { params: Params; state: Params; tokens: Int32Array } {
  const { params, state } = initLm(m, rng, 0.5);
  for (const s of lmParamSpecs(m)) {
    if (s.init === 'ones') params[s.name] = params[s.name].map(() => 1 + 0.3 * rng.normal());
    if (s.init === 'zeros') params[s.name] = rng.normals(params[s.name].length, 0.2); // non-zero biases and b's
  }
  for (const s of lmStateSpecs(m)) {
    state[s.name] =
      s.init === 'ones'
        ? Float64Array.from(rng.normals(state[s.name].length), (v) => 0.6 + v * v)
        : rng.normals(state[s.name].length, 0.3);
  }
  return { params, state, tokens: rng.ints(B * S, m.V) };
}

function fdLm(config: Config, seed: number, mutate?: (p: Params) => void) {
  const m = buildLm(config, 'test');
  const rng = new Rng(seed);
  const { value } = drawWithMargin(
    () => {
      const d = drawModel(m, rng);
      mutate?.(d.params);
      return d;
    },
    (d) => lmMargin(m, d.params, lmForward(m, d.params, d.tokens, B, S, d.state)),
  );
  const { params, state, tokens } = value;
  const fwd = lmForward(m, params, tokens, B, S, state);
  const grads = zerosLike(params);
  lmBackward(m, params, fwd, grads);
  return { m, params, state, tokens, fwd, grads, loss: () => lmForward(m, params, tokens, B, S, state).loss };
}

for (const decompose of ['vertical', 'horizontal'] as const) {
  for (const mode of ['train', 'eval'] as const) {
    test(`lm monet ${decompose} (${mode}), moe_groups 2 over 4 layers: FD for every parameter`, () => {
      const r = fdLm(monetCfg(decompose, { mode }), decompose === 'vertical' ? 2000 : 2100);
      // Sampled entries per tensor keep this fast; router weights and the group's experts are checked in full.
      const full = (n: string) => n.includes('router') || n.includes('.moe.');
      for (const name of Object.keys(r.params)) {
        checkGrads(
          `lm monet ${decompose} ${mode}`,
          r.loss,
          { [name]: r.params[name] },
          { [name]: r.grads[name] },
          { maxEntries: full(name) ? 1e9 : 12 },
        );
      }
    });
  }
}

test('lm monet: routers only on layers i % moe_groups == 0, aux once per router averaged over routers', () => {
  const m = buildLm(monetCfg('vertical'), 'test');
  const names = lmParamSpecs(m).map((s) => s.name);
  for (const i of [0, 2]) {
    assert.ok(
      names.includes(`model.layers.${i}.router.w1.weight`) && names.includes(`model.layers.${i}.router.w2.weight`),
    );
  }
  for (const i of [1, 3])
    assert.not.ok(
      names.some((n) => n.startsWith(`model.layers.${i}.router.`)),
      `layer ${i} has no router`,
    );
  for (let i = 0; i < 4; i++) {
    for (const n of [
      'u1.weight',
      'u1.bias',
      'u2.weight',
      'u2.bias',
      'v11.weight',
      'v12.weight',
      'v21.weight',
      'v22.weight',
      'b1',
      'b2',
    ])
      assert.ok(names.includes(`model.layers.${i}.moe.${n}`), `layer ${i} moe.${n}`);
  }
  assert.equal(
    lmStateSpecs(m).map((s) => s.name),
    [
      'model.layers.0.router.norm1.running_mean',
      'model.layers.0.router.norm1.running_var',
      'model.layers.0.router.norm2.running_mean',
      'model.layers.0.router.norm2.running_var',
      'model.layers.2.router.norm1.running_mean',
      'model.layers.2.router.norm1.running_var',
      'model.layers.2.router.norm2.running_mean',
      'model.layers.2.router.norm2.running_var',
    ],
  );
  const { params, state, tokens } = drawModel(m, new Rng(2200));
  const fwd = lmForward(m, params, tokens, B, S, state);
  assert.is(fwd.saved.aux.count.unif, 2, 'two routers, two uniformity losses');
  assert.is(fwd.saved.aux.count.amb, 2);
  assert.ok(Math.abs(fwd.aux.unif - fwd.saved.aux.sum.unif / 2) < 1e-15);
  assert.ok(Math.abs(fwd.loss - (fwd.ce + 0.3 * fwd.aux.unif + 0.2 * fwd.aux.amb)) < 1e-14);
  assert.equal(
    Object.keys(fwd.next).sort(),
    lmStateSpecs(m)
      .map((s) => s.name)
      .sort(),
    'train mode: next running stats for both routers',
  );
  const ev = buildLm(monetCfg('vertical', { mode: 'eval' }), 'test');
  assert.equal(Object.keys(lmForward(ev, params, tokens, B, S, state).next), [], 'eval mode updates nothing');
});

test('lm monet: a router gets gradient from the later layers of its group (sharing is real, and FD-correct)', () => {
  // Zero layer 0's experts (its FFN output is then 0 whatever g is) and the aux coefficients: router 0 can only
  // influence the loss through layer 1, which reuses its routing weights.
  const zeroLayer0 = (p: Params) => {
    for (const k of Object.keys(p)) if (k.startsWith('model.layers.0.moe.')) p[k].fill(0);
  };
  const r = fdLm(monetCfg('horizontal', { aux: { unif: 0, amb: 0 } }), 2300, zeroLayer0);
  const w = 'model.layers.0.router.w1.weight';
  assert.ok(
    r.grads[w].some((v) => Math.abs(v) > 1e-6),
    'router 0 receives gradient through layer 1',
  );
  checkGrads(
    'shared router',
    r.loss,
    { [w]: r.params[w], 'model.layers.0.router.w2.weight': r.params['model.layers.0.router.w2.weight'] },
    { [w]: r.grads[w], 'model.layers.0.router.w2.weight': r.grads['model.layers.0.router.w2.weight'] },
  );
});

test('lm monet: config errors name the key', () => {
  assert.throws(
    () => buildLm(monetCfg('vertical', { moe_decompose: 'diagonal' }), 'cfg'),
    /cfg: config\.moe_decompose/,
  );
  assert.throws(() => buildLm({ ...monetCfg('vertical'), moe_groups: undefined }, 'cfg'), /cfg: config\.moe_groups/);
  assert.throws(() => buildLm(monetCfg('vertical', { moe_dim: 3 }), 'cfg'), /config\.moe_dim: expected an even number/);
  assert.throws(() => buildLm(monetCfg('vertical', { aux: { unif: 1e-3 } }), 'cfg'), /config\.aux\.amb/);
});

// ---------------------------------------------------------------------------------------------------------------
// Parameter accounting for the docs (docs/monet.md, docs/peer.md): numbers computed from the kind declarations.

const count = (specs: Array<{ shape: number[] }>) => specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);

test('accounting: Monet 1.4B (d 2048, √N 512, m 16, H 8) per-layer experts and router, the whole model', () => {
  const dims = { d: 2048, E: 512, m: 16 };
  assert.is(count(monetVdParamSpecs(dims)), 34_611_200, 'MoVDE per layer');
  assert.is(count(monetHdParamSpecs(dims)), 34_611_200, 'MoHDE per layer (same count)');
  assert.is(
    count(monetRouterParamSpecs({ d: 2048, E: 512, H: 8, topk: 8, mode: 'train', bnEps: 1e-5, bnMomentum: 0.1 })),
    16_777_216,
    'router per group',
  );
  const cfg14 = {
    vocab_size: 32000,
    hidden_size: 2048,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    num_key_value_heads: 16,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    max_position_embeddings: 2048,
    tie_word_embeddings: false,
    mode: 'eval',
    ffn: 'monet',
    moe_experts: 512,
    moe_heads: 8,
    moe_topk: 8,
    moe_dim: 16,
    moe_groups: 4,
    moe_decompose: 'vertical',
    hidden_act: 'relu2',
    aux: { unif: 1e-3, amb: 1e-3 },
  };
  const total = count(lmParamSpecs(buildLm(cfg14, '1.4B')));
  // by hand: embeddings + lm_head, 24 × (attention q/k/v/o + 2 RMSNorms + experts), 6 routers, final norm
  const byHand = 2 * 32000 * 2048 + 24 * (4 * 2048 * 2048 + 2 * 2048 + 34_611_200) + 6 * 16_777_216 + 2048;
  assert.is(total, byHand);
  assert.is(Math.round(total / 1e5) / 10, 1465.2, 'paper Table 8: 1465.2M');
  // group size 1 (a router on every layer): paper Table 8 1.767B
  const g1 = count(lmParamSpecs(buildLm({ ...cfg14, moe_groups: 1 }, '1.4B g1')));
  assert.is(g1, total + 18 * 16_777_216);
  assert.is(Math.round(g1 / 1e6), 1767);
});

test('accounting: Monet grows with √N, PEER with N (d = 2048)', () => {
  const d = 2048;
  const monet = (E: number) => count(monetVdParamSpecs({ d, E, m: 16 }));
  const peerTables = (N: number) =>
    count(
      peerParamSpecs({
        d,
        N,
        H: 8,
        k: 16,
        dk: 256,
        activation: 'gelu',
        mode: 'eval',
        bnEps: 1e-5,
        bnMomentum: 0.1,
      }).filter((s) => s.name.startsWith('w_')),
    );
  // N = 512² experts: Monet 34.6M per layer; PEER's two expert tables alone 2·N·d = 1,073,741,824
  assert.is(peerTables(512 * 512), 2 * 512 * 512 * d);
  assert.is(
    peerTables(1024 * 1024),
    4_294_967_296,
    'PEER 1024² experts: the paper\'s "4.3 billion parameters per layer"',
  );
  // Doubling √N doubles Monet's experts (plus nothing else), but quadruples PEER's tables.
  const r = monet(1024) / monet(512);
  assert.ok(Math.abs(r - 2) < 1e-12, `Monet ×${r}`);
  assert.is(peerTables(1024 * 1024) / peerTables(512 * 512), 4);
  // PEER's query network and keys for N = 1024², H = 8, dk = 256: Wq, bq, BN γ/β, sub_keys (2, 1024, 128)
  const all = count(
    peerParamSpecs({
      d,
      N: 1024 * 1024,
      H: 8,
      k: 16,
      dk: 256,
      activation: 'gelu',
      mode: 'eval',
      bnEps: 1e-5,
      bnMomentum: 0.1,
    }),
  );
  assert.is(all - peerTables(1024 * 1024), 2048 * 2048 + 2048 + 2 * 2048 + 1024 * 256);
  // a standard SMoE with N = 512² experts of width 16 would need 2·N·m·d
  assert.is(2 * 512 * 512 * 16 * d, 17_179_869_184);
});

test.run();
