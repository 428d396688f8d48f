// Kind `dense-ffn`: the Llama MLP (reference/dense-ffn.ts). Also the expert of `smoe` and the dense layers of the
// `lm` kinds.
//
// Legend: T tokens, d hidden_size, F intermediate_size.

import type { DenseActivation, DenseFfnConfig } from '../../reference/dense-ffn.ts';
import { ConfigReader, type KeyTable } from './config.ts';
import type { KindDecl } from './kind.ts';
import { layerLayout, layerTable } from './layer.ts';
import { output, param, seed, type TensorDecl } from './layout-table.ts';
import { weight, type ParamSpec } from './tensors.ts';

export const DENSE_ACTIVATIONS: readonly DenseActivation[] = ['swiglu', 'relu2', 'relu', 'gelu'];

export const HIDDEN_SIZE = { type: 'int', min: 1, doc: 'd, the model dimension' } as const;

export const DENSE_FFN_KEYS = {
  hidden_size: HIDDEN_SIZE,
  intermediate_size: { type: 'int', min: 1, doc: 'F, the hidden units of the MLP' },
  activation: {
    type: 'enum',
    values: DENSE_ACTIVATIONS,
    doc: 'swiglu: down(silu(gate x) ⊙ up x); otherwise down(act(up x)); gelu is the exact erf form',
  },
} as const satisfies KeyTable;

/** Reads the dense MLP's keys (the caller owns the reader: the smoe and lm kinds read them too). */
export function readDenseFfn(r: ConfigReader): DenseFfnConfig {
  return {
    d: r.int('hidden_size'),
    F: r.int('intermediate_size'),
    activation: r.oneOf<DenseActivation>('activation'),
  };
}

/** The three projections by role (`gate` only for swiglu), names as in Hugging Face Llama. */
export function denseFfnTable(c: DenseFfnConfig): { gate: ParamSpec | null; up: ParamSpec; down: ParamSpec } {
  return {
    gate: c.activation === 'swiglu' ? weight('gate_proj.weight', [c.F, c.d]) : null,
    up: weight('up_proj.weight', [c.F, c.d]),
    down: weight('down_proj.weight', [c.d, c.F]),
  };
}

/** The same parameters as data (the JSON schema's layout; smoe's experts and the lm kinds reuse it). */
export const DENSE_FFN_PARAMS: TensorDecl[] = [
  param('gate_proj.weight', ['intermediate_size', 'hidden_size'], { when: "activation == 'swiglu'" }),
  param('up_proj.weight', ['intermediate_size', 'hidden_size']),
  param('down_proj.weight', ['hidden_size', 'intermediate_size']),
];

/** A layer kind's upstream gradient in.dy and output out.y, both (T, d). */
export const LAYER_DY: TensorDecl = seed('dy', ['T', 'hidden_size']);
export const LAYER_Y: TensorDecl = output('y', ['T', 'hidden_size']);

export function* denseFfnParams(c: DenseFfnConfig): Iterable<ParamSpec> {
  const t = denseFfnTable(c);
  if (t.gate) yield t.gate;
  yield t.up;
  yield t.down;
}

export const denseFfnKind: KindDecl<DenseFfnConfig> = {
  name: 'dense-ffn',
  keys: DENSE_FFN_KEYS,
  tables: {
    'dense-ffn': {
      layout: layerTable({
        x: ['T', 'hidden_size'],
        seeds: [LAYER_DY],
        params: DENSE_FFN_PARAMS,
        outputs: [LAYER_Y],
        idx: [],
      }),
      rules: [],
    },
  },
  parse(raw, where) {
    const r = new ConfigReader(raw, DENSE_FFN_KEYS, where, "kind 'dense-ffn'");
    const c = readDenseFfn(r);
    r.finish();
    return c;
  },
  params: denseFfnParams,
  state: () => [],
  layout(c, tokens) {
    const T = tokens as number;
    return layerLayout({
      T,
      x: [T, c.d],
      seeds: [['dy', [T, c.d]]],
      params: denseFfnParams(c),
      state: [],
      outputs: [['out.y', [T, c.d]]],
      idx: [],
    });
  },
};
