// The inspection forward on the float32 WASM backend (src/interp/wasm-forward.ts) against the float64 reference it
// stands in for: per-position losses, every unit's score at every position, masked losses and steered losses agree
// to float32 rounding, for every unit kind (Monet with a shared router group, SMoE, PEER, dense, TopK ffn/hidden).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initLm } from '../src/kinds/lm.ts';
import { Rng } from '../reference/rng.ts';
import type { HostMemoryDevice } from '../src/backend/device.ts';
import { createWasmDevice } from '../src/backend/wasm/node.ts';
import {
  interpForward,
  makeInterpModel,
  maskHooks,
  steerHooks,
  type InterpModel,
  type UnitHooks,
} from '../src/interp/model.ts';
import { isNeuronKind } from '../src/interp/units.ts';
import { wasmForward } from '../src/interp/wasm-forward.ts';
import type { ModelConfig } from '../src/train/presets.ts';

const BASE = {
  vocab_size: 32,
  hidden_size: 16,
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
const TOPK = (placement: 'ffn' | 'hidden'): ModelConfig => ({
  ...BASE,
  ffn: 'topk',
  intermediate_size: 12,
  activation: 'relu',
  k: 4,
  alpha: 0,
  topk_placement: placement,
  n_last_non_topk: 1,
});
const CONFIGS: Array<[string, ModelConfig]> = [
  ['monet-vd (router group of 2 layers)', MONET('vertical')],
  ['monet-hd', MONET('horizontal')],
  ['dense swiglu', { ...BASE, ffn: 'dense', intermediate_size: 12, activation: 'swiglu' }],
  ['topk ffn', TOPK('ffn')],
  ['topk hidden', TOPK('hidden')],
  [
    'smoe',
    {
      ...BASE,
      ffn: 'smoe',
      intermediate_size: 6,
      num_experts: 4,
      top_k: 2,
      activation: 'swiglu',
      aux: { balance: 0.01, z: 0.001 },
    },
  ],
  [
    'peer',
    {
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
    },
  ],
];

function randomModel(config: ModelConfig, seed: number): InterpModel {
  const probe = makeInterpModel('test', config, {}, {});
  const { params, state } = initLm(probe.lm, new Rng(seed), 0.3);
  // biases start at zero; drawn here, so that the terms they carry (Monet's b, b1, b2 weighted by the routing) count
  const rng = new Rng(seed + 1);
  for (const v of Object.values(params)) if (v.every((x) => x === 0)) v.set(rng.normals(v.length, 0.3));
  for (const [k, v] of Object.entries(state)) v.fill(k.endsWith('mean') ? 0.05 : 1.2);
  return makeInterpModel('test', config, params, state);
}

/** Every (group, token, unit) → score the hooks see, at each group's scoring layer. */
function scores(model: InterpModel, tok: Int32Array, B: number, S: number): Map<string, number> {
  const out = new Map<string, number>();
  const hooks: UnitHooks = {
    atSite(v) {
      if (v.first) v.visitScores((t, u, s) => out.set(`${v.group.group}/${t}/${u}`, s));
    },
  };
  interpForward(model, tok, B, S, hooks);
  return out;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
  return w;
};

let dev: HostMemoryDevice | null = null;
test.before(async () => {
  dev = await createWasmDevice();
});

for (const [label, config] of CONFIGS) {
  test(`${label}: wasm inspection forward = float64 reference (losses, scores, masked and steered losses)`, () => {
    const ref = randomModel(config, 11);
    const fast: InterpModel = { ...ref, fast: wasmForward(dev!, ref) };
    const B = 2;
    const S = 12;
    const rng = new Rng(5);
    const tok = Int32Array.from({ length: B * S }, () => rng.int(BASE.vocab_size));
    // losses
    const nllRef = interpForward(ref, tok, B, S).nll;
    const nllFast = interpForward(fast, tok, B, S).nll;
    assert.ok(maxAbs(nllRef, nllFast) < 1e-4, `nll: max abs diff ${maxAbs(nllRef, nllFast)}`);
    // scores: the same units fire with the same scores (float32 may flip a score sitting exactly at a threshold)
    const a = scores(ref, tok, B, S);
    const b = scores(fast, tok, B, S);
    let common = 0;
    let worst = 0;
    for (const [k, v] of a) {
      const w = b.get(k);
      if (w === undefined) continue;
      common++;
      worst = Math.max(worst, Math.abs(v - w) / Math.max(1, Math.abs(v)));
    }
    assert.ok(common > 0, 'some unit must fire');
    assert.ok(
      common >= 0.99 * Math.max(a.size, b.size),
      `same firing (group, token, unit): ${common} of ${a.size} / ${b.size}`,
    );
    assert.ok(worst < 1e-4, `scores: worst relative diff ${worst}`);
    // masked: the first few units that fired in every group
    const remove = ref.groups.map((g) => {
      const set = new Set<number>();
      for (const k of a.keys()) {
        const [gi, , u] = k.split('/').map(Number);
        if (gi === g.group && set.size < 3) set.add(u);
      }
      return set;
    });
    const mRef = interpForward(ref, tok, B, S, maskHooks(remove)).nll;
    const mFast = interpForward(fast, tok, B, S, maskHooks(remove)).nll;
    assert.ok(maxAbs(mRef, nllRef) > 1e-6, 'masking must change the losses');
    assert.ok(maxAbs(mRef, mFast) < 1e-4, `masked nll: max abs diff ${maxAbs(mRef, mFast)}`);
    // steered (neuron kinds)
    const g = ref.groups.find((x) => isNeuronKind(x.kind));
    if (g) {
      const sRef = interpForward(ref, tok, B, S, steerHooks(g.group, 1, 2.5)).nll;
      const sFast = interpForward(fast, tok, B, S, steerHooks(g.group, 1, 2.5)).nll;
      assert.ok(maxAbs(sRef, nllRef) > 1e-6, 'steering must change the losses');
      assert.ok(maxAbs(sRef, sFast) < 1e-4, `steered nll: max abs diff ${maxAbs(sRef, sFast)}`);
    }
    fast.fast!.dispose();
  });
}

test.run();
