// Kinds `topk` (the TopK activation over the last axis of in.x, reference/topk.ts) and `topk-ffn` (an MLP with TopK
// on its hidden units, reference/topk-ffn.ts). The TopK LM (src/kinds/lm.ts) reads the same keys.
//
// Legend: T tokens, F entries per row (topk: the last axis of in.x; topk-ffn: intermediate_size), d hidden_size,
// k units kept per row, α the annealing weight of the dense path.

import type { TopkFfnConfig } from '../../reference/topk-ffn.ts';
import type { TopkConfig } from '../../reference/topk.ts';
import { ConfigReader, type KeyTable } from './config.ts';
import { HIDDEN_SIZE, LAYER_DY, LAYER_Y } from './dense-ffn.ts';
import type { KindDecl, Tokens } from './kind.ts';
import { layerLayout, layerTable } from './layer.ts';
import { maskOf, output, param, type RuleDecl, seed, type TensorDecl } from './layout-table.ts';
import { weight, type ParamSpec } from './tensors.ts';

export const TOPK_KEYS = {
  k: { type: 'int', min: 1, doc: 'units kept per row (at most the row width)' },
  alpha: { type: 'number', min: 0, max: 1, doc: 'α: y = α·relu(z) + (1 − α)·relu(z) ⊙ 1{z ≥ τ_k}' },
  activation: { type: 'enum', values: ['relu'], default: 'relu', doc: 'the activation f (relu, the only one)' },
} as const satisfies KeyTable;

/** k at most the width it selects from: the topk kind's in.x last axis (F, a size), topk-ffn's intermediate_size. */
export const TOPK_RULE: RuleDecl = {
  name: 'k_at_most_width',
  key: 'k',
  check: 'k <= F',
  expected: 'at most the last axis of in.x ({F})',
};
export const TOPK_FFN_RULE: RuleDecl = {
  name: 'k_at_most_width',
  key: 'k',
  check: 'k <= intermediate_size',
  expected: 'at most intermediate_size = {intermediate_size}',
};

/** k and α, with k checked by `rule` against the width it selects from (`sizes`: the sizes the rule reads). */
export function readTopk(r: ConfigReader, rule: RuleDecl, sizes: Record<string, number> = {}): TopkConfig {
  r.oneOf('activation');
  const k = r.int('k');
  r.check(rule, sizes);
  return { k, alpha: r.num('alpha') };
}

export const topkKind: KindDecl<TopkConfig & { F: number }> = {
  name: 'topk',
  keys: TOPK_KEYS,
  tables: {
    topk: {
      layout: layerTable({
        sizes: { T: 'tokens: the first axis of in.x', F: 'entries per row: the last axis of in.x' },
        x: ['T', 'F'],
        seeds: [seed('dy', ['T', 'F'])],
        params: [],
        outputs: [output('y', ['T', 'F'])],
        idx: [maskOf('mask', ['T', 'F'])],
      }),
      rules: [TOPK_RULE],
    },
  },
  parse(raw, where, tokens?: Tokens) {
    // F is not in the config: it is the last axis of in.x, which the caller passes as tokens = [T, F].
    if (!Array.isArray(tokens)) throw new Error('internal: the topk kind needs tokens = [T, F] (the shape of in.x)');
    const F = tokens[1];
    const r = new ConfigReader(raw, TOPK_KEYS, where, "kind 'topk'");
    const c = { ...readTopk(r, TOPK_RULE, { F }), F };
    r.finish();
    return c;
  },
  params: () => [],
  state: () => [],
  layout(_c, tokens) {
    const [T, F] = tokens as [number, number];
    return layerLayout({
      T,
      x: [T, F],
      seeds: [['dy', [T, F]]],
      params: [],
      state: [],
      outputs: [['out.y', [T, F]]],
      idx: [['idx.mask', [T, F]]],
      reduction: Math.max(F, T),
    });
  },
};

export const TOPK_FFN_KEYS = {
  hidden_size: HIDDEN_SIZE,
  intermediate_size: { type: 'int', min: 1, doc: 'F, the hidden units TopK selects from' },
  ...TOPK_KEYS,
} as const satisfies KeyTable;

/** hidden_size, intermediate_size, k ≤ F and α. */
export function readTopkFfn(r: ConfigReader): TopkFfnConfig {
  const d = r.int('hidden_size');
  const F = r.int('intermediate_size');
  return { d, F, ...readTopk(r, TOPK_FFN_RULE) };
}

/** up_proj (F, d) and down_proj (d, F): an MLP with ReLU (TopK on its hidden units, or plain in an LM's last layers).
 * */
export function topkFfnTable(c: { d: number; F: number }): { up: ParamSpec; down: ParamSpec } {
  return { up: weight('up_proj.weight', [c.F, c.d]), down: weight('down_proj.weight', [c.d, c.F]) };
}

/** The same parameters as data. */
export const TOPK_FFN_PARAMS: TensorDecl[] = [
  param('up_proj.weight', ['intermediate_size', 'hidden_size']),
  param('down_proj.weight', ['hidden_size', 'intermediate_size']),
];

export function* topkFfnParams(c: { d: number; F: number }): Iterable<ParamSpec> {
  const t = topkFfnTable(c);
  yield t.up;
  yield t.down;
}

export const topkFfnKind: KindDecl<TopkFfnConfig> = {
  name: 'topk-ffn',
  keys: TOPK_FFN_KEYS,
  tables: {
    'topk-ffn': {
      layout: layerTable({
        x: ['T', 'hidden_size'],
        seeds: [LAYER_DY],
        params: TOPK_FFN_PARAMS,
        outputs: [LAYER_Y],
        idx: [maskOf('mask', ['T', 'intermediate_size'])],
      }),
      rules: [TOPK_FFN_RULE],
    },
  },
  parse(raw, where) {
    const r = new ConfigReader(raw, TOPK_FFN_KEYS, where, "kind 'topk-ffn'");
    const c = readTopkFfn(r);
    r.finish();
    return c;
  },
  params: topkFfnParams,
  state: () => [],
  layout(c, tokens) {
    const T = tokens as number;
    return layerLayout({
      T,
      x: [T, c.d],
      seeds: [['dy', [T, c.d]]],
      params: topkFfnParams(c),
      state: [],
      outputs: [['out.y', [T, c.d]]],
      idx: [['idx.mask', [T, c.F]]],
    });
  },
};
