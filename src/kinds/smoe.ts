// Kind `smoe`: a Mixtral-style sparse MoE, top-k then softmax, with load-balance and router z losses
// (reference/smoe.ts). Every expert is the dense MLP of src/kinds/dense-ffn.ts under Mixtral's names.
//
// Legend: T tokens, d hidden_size, F intermediate_size, E num_experts, k top_k.

import type { DenseActivation } from '../../reference/dense-ffn.ts';
import type { SmoeConfig } from '../../reference/smoe.ts';
import { ConfigReader, type KeyTable } from './config.ts';
import { DENSE_FFN_KEYS, LAYER_DY, LAYER_Y, readDenseFfn } from './dense-ffn.ts';
import type { KindDecl } from './kind.ts';
import { layerLayout, layerTable } from './layer.ts';
import { indexOf, nested, output, param, type RuleDecl, type TensorDecl } from './layout-table.ts';
import { weight, type ParamSpec } from './tensors.ts';

export const SMOE_KEYS = {
  ...DENSE_FFN_KEYS,
  // Each expert is its own set of tensors: the bound keeps a hostile config from listing billions of them.
  num_experts: { type: 'int', min: 1, max: 65536, doc: 'E, the experts' },
  top_k: { type: 'int', min: 1, doc: 'k, experts per token (at most num_experts)' },
  aux: { type: 'coefs', names: ['balance', 'z'], doc: 'coefficients of loss_balance and loss_z in the objective' },
} as const satisfies KeyTable;

export const SMOE_RULES: RuleDecl[] = [
  {
    name: 'top_k_at_most_experts',
    key: 'top_k',
    check: 'top_k <= num_experts',
    expected: 'at most num_experts = {num_experts}',
  },
];

/** Reads the SMoE keys but `aux` (the lm kind reads the coefficients with the model's other keys). */
export function readSmoe(r: ConfigReader): SmoeConfig {
  const mlp = readDenseFfn(r);
  const E = r.int('num_experts');
  const k = r.int('top_k');
  r.check(SMOE_RULES[0]);
  return { ...mlp, E, k };
}

/** Mixtral's names: expert e's w1 (F, d), w2 (d, F) and, for swiglu, w3 (F, d). */
export function smoeExpertTable(c: { d: number; F: number; activation: DenseActivation }, e: number) {
  const pre = `experts.${e}.`;
  return {
    w1: weight(`${pre}w1.weight`, [c.F, c.d]),
    w2: weight(`${pre}w2.weight`, [c.d, c.F]),
    w3: c.activation === 'swiglu' ? weight(`${pre}w3.weight`, [c.F, c.d]) : null,
  };
}

/** The same parameters as data (names relative to the layer). */
export const SMOE_PARAMS: TensorDecl[] = [
  param('gate.weight', ['num_experts', 'hidden_size']),
  ...nested(
    'experts.{e}.',
    [
      param('w1.weight', ['intermediate_size', 'hidden_size']),
      param('w2.weight', ['hidden_size', 'intermediate_size']),
      param('w3.weight', ['intermediate_size', 'hidden_size'], { when: "activation == 'swiglu'" }),
    ],
    { for: [['e', 'num_experts']] },
  ),
];

/** The aux losses a layer reports (scalars). */
export const SMOE_LOSSES: TensorDecl[] = [output('loss_balance', []), output('loss_z', [])];

/** gate.weight, then experts.<e>.w1/w2(/w3).weight in Mixtral order. */
export function* smoeParams(c: SmoeConfig): Iterable<ParamSpec> {
  yield weight('gate.weight', [c.E, c.d]);
  for (let e = 0; e < c.E; e++) {
    const t = smoeExpertTable(c, e);
    yield t.w1;
    yield t.w2;
    if (t.w3) yield t.w3;
  }
}

export interface SmoeKindConfig extends SmoeConfig {
  aux: { balance: number; z: number };
}

export const smoeKind: KindDecl<SmoeKindConfig> = {
  name: 'smoe',
  keys: SMOE_KEYS,
  tables: {
    smoe: {
      layout: layerTable({
        x: ['T', 'hidden_size'],
        seeds: [LAYER_DY],
        params: SMOE_PARAMS,
        outputs: [LAYER_Y, ...SMOE_LOSSES],
        idx: [indexOf('topk', ['T', 'top_k'])],
      }),
      rules: SMOE_RULES,
    },
  },
  parse(raw, where) {
    const r = new ConfigReader(raw, SMOE_KEYS, where, "kind 'smoe'");
    const c = { ...readSmoe(r), aux: r.coefs<'balance' | 'z'>('aux') };
    r.finish();
    return c;
  },
  params: smoeParams,
  state: () => [],
  layout(c, tokens) {
    const T = tokens as number;
    return layerLayout({
      T,
      x: [T, c.d],
      seeds: [['dy', [T, c.d]]],
      params: smoeParams(c),
      state: [],
      outputs: [
        ['out.y', [T, c.d]],
        ['out.loss_balance', []],
        ['out.loss_z', []],
      ],
      idx: [['idx.topk', [T, c.k]]],
    });
  },
};
