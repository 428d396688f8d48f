// The whole reference LM in float64: finite-difference checks of every parameter tensor with each feed-forward kind
// (every example in src/kinds/examples.ts, plus the TopK α sweep and tied embeddings), drawn away from routing
// boundaries; causality; aux-loss averaging; checkpoint names; the `lm` case runner.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Tensor } from '../src/tensor.ts';
import { zerosLike, type Params } from '../reference/common.ts';
import { gradCheck } from '../reference/gradcheck.ts';
import { lmBackward, lmForward, type LmConfig } from '../reference/lm.ts';
import { Rng } from '../reference/rng.ts';
import { drawWithMargin, lmMargin } from '../src/fixtures/margins.ts';
import { runReferenceCase as runLmCase } from '../src/fixtures/reference-cases.ts';
import { lmExampleConfigs, TINY_LM_BASE } from '../src/kinds/examples.ts';
import { initLm, lmParams, parseLm } from '../src/kinds/lm.ts';

type Config = Record<string, unknown>;
const buildLm = (config: Config): LmConfig => parseLm(config, JSON.stringify(config));
const lmParamSpecs = (m: LmConfig) => [...lmParams(m)];

const TOL = 1e-6;
const [B, S] = [2, 5];

/** A model with O(1) random weights (so every path matters numerically), random norm gains, random tokens. */
function drawModel(m: LmConfig, rng: Rng): { params: Params; state: Params; tokens: Int32Array } {
  const { params, state } = initLm(m, rng, 0.5);
  for (const s of lmParamSpecs(m))
    if (s.init === 'ones') params[s.name] = params[s.name].map(() => 1 + 0.3 * rng.normal());
  return { params, state, tokens: rng.ints(B * S, m.V) };
}

/** Draw until every routing decision in the model has a relative margin ≥ 1e-3, then check every parameter. */
function checkLm(config: Config, seed: number): void {
  const m = buildLm(config);
  const rng = new Rng(seed);
  const { value } = drawWithMargin(
    () => drawModel(m, rng),
    (d) => lmMargin(m, d.params, lmForward(m, d.params, d.tokens, B, S, d.state)),
  );
  const { params, state, tokens } = value;
  const fwd = lmForward(m, params, tokens, B, S, state);
  const grads = zerosLike(params);
  lmBackward(m, params, fwd, grads);
  const loss = () => lmForward(m, params, tokens, B, S, state).loss;
  const results = gradCheck(
    loss,
    Object.keys(params).map((name) => ({ name, value: params[name], grad: grads[name] })),
  );
  assert.is(results.length, lmParamSpecs(m).length);
  for (const r of results)
    assert.ok(
      r.relError <= TOL,
      `${config.ffn} ${JSON.stringify(config)}: ${r.name} relative error ${r.relError.toExponential(2)} > ${TOL}`,
    );
}

for (const ex of lmExampleConfigs())
  test(`lm ${ex.label}: every parameter gradient matches finite differences`, () => {
    checkLm(ex.config, 1000);
  });

const topkBase = { ...TINY_LM_BASE, ffn: 'topk', intermediate_size: 12, k: 4, n_last_non_topk: 1 };
for (const alpha of [1, 0.4, 0])
  test(`lm topk placement ffn α=${alpha}: every parameter gradient matches finite differences`, () => {
    checkLm({ ...topkBase, topk_placement: 'ffn', alpha }, 1100);
  });
test('lm topk placement hidden α=0: every parameter gradient matches finite differences', () => {
  checkLm({ ...topkBase, topk_placement: 'hidden', alpha: 0, k: 5 }, 1200);
});
test('lm smoe with strong aux coefficients and tied embeddings, 2 KV heads: finite differences', () => {
  checkLm(
    {
      ...TINY_LM_BASE,
      ffn: 'smoe',
      num_key_value_heads: 2,
      tie_word_embeddings: true,
      intermediate_size: 5,
      num_experts: 3,
      top_k: 2,
      activation: 'gelu',
      aux: { balance: 0.5, z: 0.25 },
    },
    1300,
  );
});

test('lm is causal: changing the last token leaves the logits of earlier positions unchanged', () => {
  for (const config of [
    { ...TINY_LM_BASE, ffn: 'dense', intermediate_size: 12, activation: 'swiglu' },
    { ...topkBase, topk_placement: 'hidden', alpha: 0 },
  ]) {
    const m = buildLm(config);
    const { params, state, tokens } = drawModel(m, new Rng(1400));
    const a = lmForward(m, params, tokens, B, S, state).logits;
    const t2 = Int32Array.from(tokens);
    t2[S - 1] = (t2[S - 1] + 1) % m.V; // last token of sequence 0
    const b = lmForward(m, params, t2, B, S, state).logits;
    const V = m.V;
    for (let i = 0; i < (S - 1) * V; i++)
      assert.is(b[i], a[i], `${config.ffn}: logit ${i} of an earlier position changed`);
    let changed = false;
    for (let i = (S - 1) * V; i < S * V; i++) if (b[i] !== a[i]) changed = true;
    assert.ok(changed);
    for (let i = S * V; i < 2 * S * V; i++) assert.is(b[i], a[i], 'the other sequence is untouched');
  }
});

test('lm loss = CE + Σ coef · (aux averaged over the SMoE layers)', () => {
  const config = {
    ...TINY_LM_BASE,
    ffn: 'smoe',
    intermediate_size: 6,
    num_experts: 4,
    top_k: 2,
    activation: 'swiglu',
    aux: { balance: 0.1, z: 0.01 },
  };
  const m = buildLm(config);
  const { params, state, tokens } = drawModel(m, new Rng(1500));
  const fwd = lmForward(m, params, tokens, B, S, state);
  const aux = fwd.saved.aux;
  assert.is(aux.count.balance, 3, 'one balance loss per layer');
  assert.ok(Math.abs(fwd.aux.balance - aux.sum.balance / 3) < 1e-15);
  assert.ok(Math.abs(fwd.loss - (fwd.ce + 0.1 * fwd.aux.balance + 0.01 * fwd.aux.z)) < 1e-14);
  // The CE part alone, with zero coefficients, is the same number.
  const m0 = buildLm({ ...config, aux: { balance: 0, z: 0 } });
  assert.ok(Math.abs(lmForward(m0, params, tokens, B, S, state).loss - fwd.ce) < 1e-15);
});

test('lm parameter names follow the Hugging Face Llama / Mixtral checkpoint layout', () => {
  const names = (config: Config) => lmParamSpecs(buildLm(config)).map((s) => `${s.name} [${s.shape}]`);
  const dense = names({ ...TINY_LM_BASE, ffn: 'dense', intermediate_size: 12, activation: 'swiglu' });
  for (const n of [
    'model.embed_tokens.weight [11,8]',
    'model.layers.0.input_layernorm.weight [8]',
    'model.layers.0.self_attn.q_proj.weight [8,8]',
    'model.layers.0.self_attn.k_proj.weight [4,8]',
    'model.layers.0.self_attn.v_proj.weight [4,8]',
    'model.layers.0.self_attn.o_proj.weight [8,8]',
    'model.layers.0.post_attention_layernorm.weight [8]',
    'model.layers.2.mlp.gate_proj.weight [12,8]',
    'model.layers.2.mlp.up_proj.weight [12,8]',
    'model.layers.2.mlp.down_proj.weight [8,12]',
    'model.norm.weight [8]',
    'lm_head.weight [11,8]',
  ])
    assert.ok(dense.includes(n), `missing ${n}`);
  const smoe = names({
    ...TINY_LM_BASE,
    ffn: 'smoe',
    tie_word_embeddings: true,
    intermediate_size: 6,
    num_experts: 2,
    top_k: 1,
    activation: 'swiglu',
    aux: { balance: 0, z: 0 },
  });
  for (const n of [
    'model.layers.1.block_sparse_moe.gate.weight [2,8]',
    'model.layers.1.block_sparse_moe.experts.1.w3.weight [6,8]',
    'model.layers.1.block_sparse_moe.experts.0.w2.weight [8,6]',
  ])
    assert.ok(smoe.includes(n), `missing ${n}`);
  assert.not.ok(
    smoe.some((n) => n.startsWith('lm_head')),
    'tied embeddings: no lm_head.weight',
  );
});

test('lm case runner: outputs, gradInit accumulation, forward-only, and clear errors', () => {
  const config = {
    ...TINY_LM_BASE,
    ffn: 'smoe',
    intermediate_size: 6,
    num_experts: 4,
    top_k: 2,
    activation: 'relu2',
    aux: { balance: 0.1, z: 0.01 },
  };
  const m = buildLm(config);
  const { params, state, tokens } = drawModel(m, new Rng(1600));
  const tensors = new Map<string, Tensor>([['in.tokens', { dtype: 'I32', shape: [B, S], data: tokens }]]);
  for (const s of lmParamSpecs(m))
    tensors.set(`param.${s.name}`, { dtype: 'F64', shape: s.shape, data: params[s.name] });
  const c = { kind: 'lm', config, tensors, source: 'test lm' };
  const out = runLmCase(c);
  const fwd = lmForward(m, params, tokens, B, S, state);
  assert.is((out.get('out.loss')!.data as Float64Array)[0], fwd.loss);
  assert.is((out.get('out.loss_balance')!.data as Float64Array)[0], fwd.aux.balance);
  assert.equal(out.get('out.logits')!.shape, [B, S, m.V]);
  const grads = zerosLike(params);
  lmBackward(m, params, fwd, grads);
  for (const s of lmParamSpecs(m))
    assert.equal(Array.from(out.get(`grad.param.${s.name}`)!.data as Float64Array), Array.from(grads[s.name]), s.name);
  const init = new Map<string, Tensor>([
    ['grad.param.model.norm.weight', { dtype: 'F64', shape: [8], data: new Float64Array(8).fill(1) }],
  ]);
  const acc = runLmCase(c, { gradInit: init }).get('grad.param.model.norm.weight')!.data as Float64Array;
  for (const [i, v] of acc.entries()) assert.ok(Math.abs(v - (grads['model.norm.weight'][i] + 1)) < 1e-15);
  assert.not.ok([...runLmCase(c, { forwardOnly: true }).keys()].some((n) => n.startsWith('grad.')));
  // I64 tokens are accepted.
  const t64 = new Map(tensors);
  t64.set('in.tokens', { dtype: 'I64', shape: [B, S], data: BigInt64Array.from(tokens, (v) => BigInt(v)) });
  assert.is((runLmCase({ ...c, tensors: t64 }).get('out.loss')!.data as Float64Array)[0], fwd.loss);

  assert.throws(() => runLmCase({ ...c, config: { ...config, ffn: 'mamba' } }), /config\.ffn: expected one of 'dense'/);
  assert.throws(
    () => runLmCase({ ...c, config: { ...config, ffn: 'dense', activation: 'relu2' } }),
    /config\.aux \(kind 'lm' with ffn 'dense' has no such key; it belongs to ffn 'smoe', 'monet'\)/,
  );
  const missing = new Map(tensors);
  missing.delete('param.model.layers.1.block_sparse_moe.experts.3.w2.weight');
  assert.throws(
    () => runLmCase({ ...c, tensors: missing }),
    /missing tensor param\.model\.layers\.1\.block_sparse_moe\.experts\.3\.w2\.weight/,
  );
  assert.throws(
    () => runLmCase({ ...c, config: { ...config, max_position_embeddings: 4 } }),
    /sequence length 5 exceeds max_position_embeddings 4/,
  );
  const bad = new Map(tensors);
  bad.set('in.tokens', { dtype: 'I32', shape: [B, S], data: Int32Array.from(tokens, () => 11) });
  assert.throws(() => runLmCase({ ...c, tensors: bad }), /token id 11 at position 0 is outside \[0, 11\)/);
});

test.run();
