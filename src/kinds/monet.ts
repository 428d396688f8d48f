// Kinds `monet-router` (reference/monet-router.ts), `monet-hd` and `monet-vd` (a whole Monet layer: router, experts
// with horizontal or vertical decomposition, aux losses; reference/monet-layer.ts). The monet `lm` reads the same
// keys.
//
// Legend: T tokens, d hidden_size, E moe_experts = √N experts per side, H moe_heads, m moe_dim; the router keeps
// moe_topk of E experts per head on average.

import type { MonetDecompose, MonetLayerConfig } from '../../reference/monet-layer.ts';
import type { MonetRouterConfig } from '../../reference/monet-router.ts';
import { ConfigReader, type KeyTable } from './config.ts';
import { HIDDEN_SIZE, LAYER_DY, LAYER_Y } from './dense-ffn.ts';
import type { KindDecl } from './kind.ts';
import { layerLayout, layerTable } from './layer.ts';
import {
  maskOf,
  nested,
  output,
  param,
  type RuleDecl,
  runningStatsDecl,
  seed,
  type TensorDecl,
} from './layout-table.ts';
import { BN_EPS, BN_MODE, BN_MOMENTUM } from './peer.ts';
import { bias, prefixed, runningStats, weight, type ParamSpec, type StateSpec } from './tensors.ts';

/** The router keys without hidden_size and mode (the lm kind has its own). */
export const MONET_ROUTER_OWN_KEYS = {
  moe_experts: { type: 'int', min: 2, doc: 'E = √N, experts per side (N = E² composite experts)' },
  moe_heads: { type: 'int', min: 1, doc: 'H, expert heads' },
  moe_topk: { type: 'int', min: 1, doc: 'experts per head the BatchNorm threshold keeps on average (< moe_experts)' },
  bn_eps: BN_EPS,
  bn_momentum: BN_MOMENTUM,
} as const satisfies KeyTable;

export const MONET_ROUTER_KEYS = {
  hidden_size: HIDDEN_SIZE,
  ...MONET_ROUTER_OWN_KEYS,
  mode: BN_MODE,
} as const satisfies KeyTable;

/** The experts' and aux losses' keys. */
export const MONET_EXPERT_KEYS = {
  moe_dim: { type: 'int', min: 1, doc: 'm, the expert width (even for the vertical decomposition)' },
  hidden_act: {
    type: 'enum',
    values: ['relu2'],
    default: 'relu2',
    doc: 'the experts activation (relu², the only one)',
  },
  aux: { type: 'coefs', names: ['unif', 'amb'], doc: 'coefficients of loss_unif and loss_amb (paper: 1e-3 each)' },
  unif_eps: { type: 'number', above: 0, default: 1e-10, doc: 'ε inside the uniformity loss log(ḡ + ε)' },
} as const satisfies KeyTable;

export const MONET_KEYS = { ...MONET_ROUTER_KEYS, ...MONET_EXPERT_KEYS } as const satisfies KeyTable;

export const MONET_ROUTER_RULE: RuleDecl = {
  name: 'moe_topk_below_experts',
  key: 'moe_topk',
  check: 'moe_topk < moe_experts',
  expected: 'less than moe_experts = {moe_experts} (the threshold is Φ⁻¹(1 − topk/E))',
};

/** The vertical decomposition's rules (kind monet-vd; an lm with moe_decompose 'vertical'). */
export const MONET_VD_RULES: RuleDecl[] = [
  {
    name: 'hidden_size_even',
    key: 'hidden_size',
    check: 'hidden_size % 2 == 0',
    expected: 'an even number (the vertical decomposition splits the output in halves)',
  },
  {
    name: 'moe_dim_even',
    key: 'moe_dim',
    check: 'moe_dim % 2 == 0',
    expected: 'an even number (the vertical decomposition splits each expert in halves)',
  },
];

export function readMonetRouter(r: ConfigReader, d: number, mode: 'train' | 'eval'): MonetRouterConfig {
  const E = r.int('moe_experts');
  const H = r.int('moe_heads');
  const topk = r.int('moe_topk');
  r.check(MONET_ROUTER_RULE);
  return { d, E, H, topk, mode, bnEps: r.num('bn_eps'), bnMomentum: r.num('bn_momentum') };
}

export function readMonetLayer(
  r: ConfigReader,
  d: number,
  mode: 'train' | 'eval',
  decompose: MonetDecompose,
): MonetLayerConfig {
  const router = readMonetRouter(r, d, mode);
  const m = r.int('moe_dim');
  r.oneOf('hidden_act');
  if (decompose === 'vertical') for (const rule of MONET_VD_RULES) r.check(rule);
  const aux = r.coefs<'unif' | 'amb'>('aux');
  return { ...router, m, aux, unifEps: r.num('unif_eps') };
}

/** The router's parameters by role: w1, w2 (H·E, d), no bias. */
export function monetRouterTable(c: MonetRouterConfig): Record<'w1' | 'w2', ParamSpec> {
  return { w1: weight('w1.weight', [c.H * c.E, c.d]), w2: weight('w2.weight', [c.H * c.E, c.d]) };
}

export function monetRouterParams(c: MonetRouterConfig): ParamSpec[] {
  return Object.values(monetRouterTable(c));
}

/** norm1.running_{mean,var}, norm2.running_{mean,var}, each (H). */
export function monetRouterState(c: MonetRouterConfig): StateSpec[] {
  return [...runningStats('norm1.', c.H), ...runningStats('norm2.', c.H)];
}

/** MoHDE's parameters by role (the device layer's names): u (E·m, d), u.bias, v (d, E·m), b (E, d). */
export function monetHdTable(c: { d: number; E: number; m: number }): Record<'u' | 'ub' | 'v' | 'b', ParamSpec> {
  const { d, E, m } = c;
  return {
    u: weight('u.weight', [E * m, d]),
    ub: bias('u.bias', [E * m]),
    v: weight('v.weight', [d, E * m]),
    b: bias('b', [E, d]),
  };
}

type VdRole = 'u1' | 'u1b' | 'u2' | 'u2b' | 'v11' | 'v12' | 'v21' | 'v22' | 'b1' | 'b2';

/** MoVDE's parameters by role: two bottom halves u1, u2 (E·m/2, d), four top quarters v (d/2, E·m/2), b1, b2. */
export function monetVdTable(c: { d: number; E: number; m: number }): Record<VdRole, ParamSpec> {
  const Emh = (c.E * c.m) / 2;
  const dh = c.d / 2;
  return {
    u1: weight('u1.weight', [Emh, c.d]),
    u1b: bias('u1.bias', [Emh]),
    u2: weight('u2.weight', [Emh, c.d]),
    u2b: bias('u2.bias', [Emh]),
    v11: weight('v11.weight', [dh, Emh]),
    v12: weight('v12.weight', [dh, Emh]),
    v21: weight('v21.weight', [dh, Emh]),
    v22: weight('v22.weight', [dh, Emh]),
    b1: bias('b1', [c.E, dh]),
    b2: bias('b2', [c.E, dh]),
  };
}

/** The experts' parameters, named relative to the experts module (the layer adds `moe.`). */
export function monetExpertParams(c: MonetLayerConfig, decompose: MonetDecompose): ParamSpec[] {
  return Object.values(decompose === 'vertical' ? monetVdTable(c) : monetHdTable(c));
}

/** The router's, the experts' tensors as data (names relative to the router and to the experts module). */
export const MONET_ROUTER_PARAMS: TensorDecl[] = [
  param('w1.weight', ['moe_heads * moe_experts', 'hidden_size']),
  param('w2.weight', ['moe_heads * moe_experts', 'hidden_size']),
];
export const MONET_ROUTER_STATE: TensorDecl[] = [
  ...runningStatsDecl('norm1.', 'moe_heads'),
  ...runningStatsDecl('norm2.', 'moe_heads'),
];
export const MONET_HD_PARAMS: TensorDecl[] = [
  param('u.weight', ['moe_experts * moe_dim', 'hidden_size']),
  param('u.bias', ['moe_experts * moe_dim']),
  param('v.weight', ['hidden_size', 'moe_experts * moe_dim']),
  param('b', ['moe_experts', 'hidden_size']),
];
const EMH = 'moe_experts * moe_dim // 2';
export const MONET_VD_PARAMS: TensorDecl[] = [
  param('u1.weight', [EMH, 'hidden_size']),
  param('u1.bias', [EMH]),
  param('u2.weight', [EMH, 'hidden_size']),
  param('u2.bias', [EMH]),
  ...['v11', 'v12', 'v21', 'v22'].map((v) => param(`${v}.weight`, ['hidden_size // 2', EMH])),
  param('b1', ['moe_experts', 'hidden_size // 2']),
  param('b2', ['moe_experts', 'hidden_size // 2']),
];
const GATES = ['T', 'moe_heads', 'moe_experts'];
export const MONET_GATES: TensorDecl[] = [output('g1', GATES), output('g2', GATES)];
export const MONET_LOSSES: TensorDecl[] = [output('loss_unif', []), output('loss_amb', [])];
const MONET_MASKS = [maskOf('mask1', GATES), maskOf('mask2', GATES)];

export const monetRouterKind: KindDecl<MonetRouterConfig> = {
  name: 'monet-router',
  keys: MONET_ROUTER_KEYS,
  tables: {
    'monet-router': {
      layout: layerTable({
        x: ['T', 'hidden_size'],
        seeds: [seed('dg1', GATES), seed('dg2', GATES)],
        params: MONET_ROUTER_PARAMS,
        state: MONET_ROUTER_STATE,
        outputs: MONET_GATES,
        idx: MONET_MASKS,
        modal: true,
      }),
      rules: [MONET_ROUTER_RULE],
    },
  },
  parse(raw, where) {
    const r = new ConfigReader(raw, MONET_ROUTER_KEYS, where, "kind 'monet-router'");
    const d = r.int('hidden_size');
    const c = readMonetRouter(r, d, r.oneOf('mode'));
    r.finish();
    return c;
  },
  params: monetRouterParams,
  state: monetRouterState,
  layout(c, tokens) {
    const T = tokens as number;
    const { d, H, E } = c;
    return layerLayout({
      T,
      x: [T, d],
      seeds: [
        ['dg1', [T, H, E]],
        ['dg2', [T, H, E]],
      ],
      params: monetRouterParams(c),
      state: monetRouterState(c),
      mode: c.mode,
      outputs: [
        ['out.g1', [T, H, E]],
        ['out.g2', [T, H, E]],
      ],
      idx: [
        ['idx.mask1', [T, H, E]],
        ['idx.mask2', [T, H, E]],
      ],
      reduction: T * E, // BatchNorm over tokens × experts
    });
  },
};

function monetLayerKind(decompose: MonetDecompose): KindDecl<MonetLayerConfig> {
  const name = decompose === 'vertical' ? 'monet-vd' : 'monet-hd';
  const params = (c: MonetLayerConfig) => [
    ...prefixed('router.', monetRouterParams(c)),
    ...prefixed('moe.', monetExpertParams(c, decompose)),
  ];
  const state = (c: MonetLayerConfig) => prefixed('router.', monetRouterState(c));
  return {
    name,
    keys: MONET_KEYS,
    tables: {
      [name]: {
        layout: layerTable({
          x: ['T', 'hidden_size'],
          seeds: [LAYER_DY],
          params: [
            ...nested('router.', MONET_ROUTER_PARAMS),
            ...nested('moe.', decompose === 'vertical' ? MONET_VD_PARAMS : MONET_HD_PARAMS),
          ],
          state: nested('router.', MONET_ROUTER_STATE),
          outputs: [LAYER_Y, ...MONET_LOSSES, ...MONET_GATES],
          idx: MONET_MASKS,
          modal: true,
        }),
        rules: [MONET_ROUTER_RULE, ...(decompose === 'vertical' ? MONET_VD_RULES : [])],
      },
    },
    parse(raw, where) {
      const r = new ConfigReader(raw, MONET_KEYS, where, `kind '${name}'`);
      const d = r.int('hidden_size');
      const c = readMonetLayer(r, d, r.oneOf('mode'), decompose);
      r.finish();
      return c;
    },
    params,
    state,
    layout(c, tokens) {
      const T = tokens as number;
      const { d, H, E } = c;
      return layerLayout({
        T,
        x: [T, d],
        seeds: [['dy', [T, d]]],
        params: params(c),
        state: state(c),
        mode: c.mode,
        outputs: [
          ['out.y', [T, d]],
          ['out.loss_unif', []],
          ['out.loss_amb', []],
          ['out.g1', [T, H, E]],
          ['out.g2', [T, H, E]],
        ],
        idx: [
          ['idx.mask1', [T, H, E]],
          ['idx.mask2', [T, H, E]],
        ],
        reduction: T * E,
      });
    },
  };
}

export const monetHdKind = monetLayerKind('horizontal');
export const monetVdKind = monetLayerKind('vertical');
