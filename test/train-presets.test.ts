// Presets and parameter accounting, checked against docs/spec.md §1.2 / §1.6 (numbers computed there independently).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  PRESETS,
  getPreset,
  paramBreakdown,
  paramSpecs,
  stateSpecs,
  expertScaling,
  formatCount,
  validateConfig,
  type ModelConfig,
} from '../src/train/presets.ts';
import { initParams } from '../src/train/init.ts';
import { describeModel } from '../src/train/trainer.ts';
import { main } from '../src/cli/main.ts';

test('Monet 1.4B comes out as 1,465.2M with docs/spec.md §1.2 accounting (VD and HD alike)', () => {
  for (const name of ['monet-vd-1.4b', 'monet-hd-1.4b']) {
    const b = paramBreakdown(getPreset(name).config);
    assert.is(formatCount(b.total), '1,465.2M', name);
    assert.is(b.attention / 24, 16777216); // 16.777M per layer
    assert.is(b.routers / 6, 16777216); // 6 routers of 16.777M
    assert.is(b.ffn / 24, 34611200); // docs/spec.md §1.6: 34,611,200 per layer
  }
});

test('Monet 850M and 4.1B totals match docs/spec.md §1.2 (853.5M, 4,173.4M)', () => {
  assert.is(formatCount(paramBreakdown(getPreset('monet-vd-850m').config).total), '853.5M');
  assert.is(formatCount(paramBreakdown(getPreset('monet-hd-4.1b').config).total), '4,173.4M');
  assert.is(paramBreakdown(getPreset('monet-vd-850m').config).ffn / 24, 19666944); // 19.667M
  assert.is(paramBreakdown(getPreset('monet-vd-4.1b').config).routers / 8, 37748736); // 8 routers of 37.749M
});

test('√N = 512 at d = 2048, m = 16: SMoE would need 17.2 B and PEER 1.07 B per layer (docs/spec.md §1.6)', () => {
  const s = expertScaling(getPreset('monet-vd-1.4b').config);
  assert.is(s.N, 262144);
  assert.is(s.monetPerLayer, 34611200);
  assert.is(Math.round(s.smoePerLayer / 1e8) / 10, 17.2);
  assert.is(Math.round(s.peerPerLayer / 1e7) / 100, 1.07);
});

test(
  'the trainable √N = 512 preset really has 262,144 experts per layer and far fewer parameters than ' + 'SMoE/PEER',
  () => {
    const p = getPreset('monet-vd-512');
    assert.ok(p.trainable);
    const s = expertScaling(p.config);
    assert.is(s.N, 512 * 512);
    assert.ok(s.monetPerLayer * 50 < s.peerPerLayer);
    assert.ok(s.peerPerLayer < s.smoePerLayer);
  },
);

test('names of docs/fixtures.md: routers where i % moe_groups == 0, VD halves, Mixtral experts, PEER layer', () => {
  const vd = paramSpecs(getPreset('monet-vd-1.4b').config).map((s) => s.name);
  assert.ok(vd.includes('model.layers.0.router.w1.weight'));
  assert.ok(vd.includes('model.layers.4.router.w2.weight'));
  assert.not.ok(vd.includes('model.layers.1.router.w1.weight'));
  assert.ok(vd.includes('model.layers.23.moe.v22.weight'));
  assert.ok(vd.includes('lm_head.weight') && vd[0] === 'model.embed_tokens.weight');
  const smoe = paramSpecs(getPreset('smoe-small').config).map((s) => s.name);
  assert.ok(smoe.includes('model.layers.3.block_sparse_moe.experts.7.w3.weight'));
  const peer = paramSpecs(getPreset('peer-small').config);
  const keys = peer.find((s) => s.name === 'model.layers.2.mlp.sub_keys');
  assert.equal(keys?.shape, [2, 64, 16]);
  assert.ok(
    peer.some((s) => s.name === 'model.layers.1.mlp.up_proj.weight') &&
      !peer.some((s) => s.name.endsWith('gate_proj.weight')),
  );
  const st = stateSpecs(getPreset('monet-vd-small').config).map((s) => s.name);
  assert.ok(st.includes('state.model.layers.2.router.norm2.running_var'));
});

test('weight decay: on weights and embeddings, never on norms, biases or Monet b/b1/b2', () => {
  for (const s of paramSpecs(getPreset('monet-vd-small').config)) {
    const noDecay = /norm\.weight$|layernorm\.weight$|\.bias$|\.moe\.b[12]?$/.test(s.name);
    assert.is(s.decay, !noDecay, s.name);
  }
  const peer = paramSpecs(getPreset('peer-small').config);
  assert.is(peer.find((s) => s.name.endsWith('query_bn.weight'))?.decay, false);
  assert.is(peer.find((s) => s.name.endsWith('w_up'))?.decay, true);
});

test('config validation names the key', () => {
  const base = getPreset('monet-vd-small').config;
  const bad = (patch: Partial<ModelConfig>, re: RegExp) =>
    assert.throws(() => validateConfig({ ...base, ...patch } as ModelConfig), re);
  bad({ hidden_size: 130 }, /config\.hidden_size: expected a multiple of num_attention_heads = 4, found 130/);
  bad({ moe_topk: 32 }, /config\.moe_topk: expected less than moe_experts = 32.*found 32/);
  bad({ moe_dim: 3 }, /config\.moe_dim: expected an even number.*found 3/);
  bad({ ffn: 'mlp' as never }, /config\.ffn: expected one of 'dense', 'smoe', 'peer', 'monet', 'topk', found "mlp"/);
  bad({ num_hidden_layers: 0 }, /config\.num_hidden_layers: expected an integer in \[1, 4096\], found 0/);
  const peer = getPreset('peer-small').config;
  assert.throws(
    () => validateConfig({ ...peer, num_experts: 1000 }),
    /config\.num_experts: expected a perfect square.*found 1000/,
  );
  assert.throws(
    () => validateConfig({ ...peer, peer_layers: [9] }),
    /config\.peer_layers: expected a non-empty array of distinct layer indices in \[0, 4\), found \[9\]/,
  );
  assert.throws(() => getPreset('monet-vd-2b'), /unknown preset 'monet-vd-2b'; expected one of monet-vd-850m/);
});

test('every preset validates; init draws N(0, 0.02) weights, ones for norms, zeros for biases', () => {
  for (const p of PRESETS) validateConfig(p.config);
  const { params, state } = initParams(getPreset('tiny').config, 7);
  const emb = params.get('model.embed_tokens.weight')!;
  let s2 = 0;
  for (const x of emb) s2 += x * x;
  const std = Math.sqrt(s2 / emb.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  assert.ok(params.get('model.norm.weight')!.every((x) => x === 1));
  assert.ok(params.get('model.layers.0.moe.u1.bias')!.every((x) => x === 0));
  assert.ok(params.get('model.layers.0.moe.b2')!.every((x) => x === 0));
  assert.ok(state.get('state.model.layers.0.router.norm1.running_var')!.every((x) => x === 1));
  // same seed, same numbers
  assert.equal(
    Array.from(initParams(getPreset('tiny').config, 7).params.get('lm_head.weight')!.slice(0, 4)),
    Array.from(params.get('lm_head.weight')!.slice(0, 4)),
  );
});

test('the √N = 512 preset prints its count beside SMoE (2·N·m·d) and PEER (2·N·d) with as many experts', () => {
  const lines = describeModel(getPreset('monet-vd-512').config).join('\n');
  assert.match(lines, /N = 512² = 262,144/);
  assert.match(lines, /SMoE with 262,144 experts of width m = 2 would need 134\.2M/); // 2·262144·2·128 = 134,217,728
  assert.match(lines, /PEER with 262,144 singleton experts 67\.1M/); // 2·262144·128 = 67,108,864
});

test('monet train --list-presets prints every preset, the 1.4B as 1,465.2M', async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (x: unknown) => void lines.push(String(x));
  try {
    assert.is(await main(['train', '--list-presets']), 0);
  } finally {
    console.log = log;
  }
  const out = lines.join('\n');
  for (const p of PRESETS) assert.match(out, new RegExp(`^${p.name.replace(/\./g, '\\.')} `, 'm'));
  assert.match(out, /monet-vd-1\.4b .*\n.*parameters 1,465\.2M \(1,465,157,632\)/);
});

test.run();
