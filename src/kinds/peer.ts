// Kind `peer`: Parameter Efficient Expert Retrieval (reference/peer.ts): product keys over N = K² singleton experts,
// H heads sharing the sub-keys, a BatchNorm on the queries.
//
// Legend: T tokens, d hidden_size, N num_experts (a perfect square), K = √N sub-keys per half, H heads,
// k top_k (per head and per key half), dk key_dim (even), dq = H·dk query features.

import type { PeerActivation, PeerConfig } from '../../reference/peer.ts';
import { peerSubKeys } from '../../reference/peer.ts';
import { ConfigReader, type KeyTable } from './config.ts';
import { HIDDEN_SIZE, LAYER_DY, LAYER_Y } from './dense-ffn.ts';
import type { KindDecl } from './kind.ts';
import { layerLayout, layerTable } from './layer.ts';
import { indexOf, param, type RuleDecl, runningStatsDecl, type TensorDecl } from './layout-table.ts';
import { bias, runningStats, scale, weight, type ParamSpec, type StateSpec } from './tensors.ts';

export const BN_MODE = {
  type: 'enum',
  values: ['train', 'eval'],
  doc: 'BatchNorm: batch statistics or running',
} as const;
export const BN_EPS = { type: 'number', above: 0, default: 1e-5, doc: 'BatchNorm ε (PyTorch default)' } as const;
export const BN_MOMENTUM = {
  type: 'number',
  min: 0,
  max: 1,
  default: 0.1,
  doc: 'BatchNorm running-statistics momentum (PyTorch default)',
} as const;

/** The PEER keys without hidden_size and mode (the lm kind has its own). */
export const PEER_EXPERT_KEYS = {
  num_experts: { type: 'int', min: 1, doc: 'N, the experts: a perfect square (product keys)' },
  heads: { type: 'int', min: 1, doc: 'H, retrieval heads (their outputs are summed)' },
  top_k: { type: 'int', min: 1, doc: 'k, experts per head, also the top-k of each key half (at most √N)' },
  key_dim: { type: 'int', min: 2, doc: 'dk, the query width per head (even: two halves)' },
  activation: { type: 'enum', values: ['relu', 'gelu'], doc: 'σ of the experts e(x) = σ(w_down·x)·w_up' },
  bn_eps: BN_EPS,
  bn_momentum: BN_MOMENTUM,
} as const satisfies KeyTable;

export const PEER_KEYS = { hidden_size: HIDDEN_SIZE, ...PEER_EXPERT_KEYS, mode: BN_MODE } as const satisfies KeyTable;

export const PEER_RULES = {
  square: {
    name: 'num_experts_square',
    key: 'num_experts',
    check: 'isqrt(num_experts) * isqrt(num_experts) == num_experts',
    expected: 'a perfect square (product keys: N = K² for K sub-keys per half)',
  },
  topk: {
    name: 'top_k_at_most_sub_keys',
    key: 'top_k',
    check: 'top_k <= isqrt(num_experts)',
    expected: 'at most √num_experts = {isqrt(num_experts)} (top-k is taken on each key half first)',
  },
  keyDim: {
    name: 'key_dim_even',
    key: 'key_dim',
    check: 'key_dim % 2 == 0',
    expected: 'an even number (the query splits in two halves)',
  },
} as const satisfies Record<string, RuleDecl>;

/** The PEER keys; `mode` is the caller's (the lm kind passes the model's). */
export function readPeer(r: ConfigReader, d: number, mode: 'train' | 'eval'): PeerConfig {
  const N = r.int('num_experts');
  r.check(PEER_RULES.square);
  const H = r.int('heads');
  const k = r.int('top_k');
  r.check(PEER_RULES.topk);
  const dk = r.int('key_dim');
  r.check(PEER_RULES.keyDim);
  const activation = r.oneOf<PeerActivation>('activation');
  return { d, N, H, k, dk, activation, mode, bnEps: r.num('bn_eps'), bnMomentum: r.num('bn_momentum') };
}

/** The parameters by role (the device layer's names), each with its checkpoint name. */
export function peerTable(c: PeerConfig) {
  const dq = c.H * c.dk;
  return {
    query: weight('query.weight', [dq, c.d]),
    queryBias: bias('query.bias', [dq]),
    bnWeight: scale('query_bn.weight', [dq]),
    bnBias: bias('query_bn.bias', [dq]),
    subKeys: weight('sub_keys', [2, peerSubKeys(c.N), c.dk / 2]),
    wDown: weight('w_down', [c.N, c.d]),
    wUp: weight('w_up', [c.N, c.d]),
  };
}

/** The same parameters and state as data (names relative to the layer). */
export const PEER_PARAMS: TensorDecl[] = [
  param('query.weight', ['heads * key_dim', 'hidden_size']),
  param('query.bias', ['heads * key_dim']),
  param('query_bn.weight', ['heads * key_dim']),
  param('query_bn.bias', ['heads * key_dim']),
  param('sub_keys', [2, 'isqrt(num_experts)', 'key_dim // 2']),
  param('w_down', ['num_experts', 'hidden_size']),
  param('w_up', ['num_experts', 'hidden_size']),
];
export const PEER_STATE: TensorDecl[] = runningStatsDecl('query_bn.', 'heads * key_dim');

export function peerParams(c: PeerConfig): ParamSpec[] {
  return Object.values(peerTable(c));
}

export function peerState(c: PeerConfig): StateSpec[] {
  return runningStats('query_bn.', c.H * c.dk);
}

export const peerKind: KindDecl<PeerConfig> = {
  name: 'peer',
  keys: PEER_KEYS,
  tables: {
    peer: {
      layout: layerTable({
        x: ['T', 'hidden_size'],
        seeds: [LAYER_DY],
        params: PEER_PARAMS,
        state: PEER_STATE,
        outputs: [LAYER_Y],
        idx: [indexOf('experts', ['T', 'heads', 'top_k'])],
        modal: true,
      }),
      rules: Object.values(PEER_RULES),
    },
  },
  parse(raw, where) {
    const r = new ConfigReader(raw, PEER_KEYS, where, "kind 'peer'");
    const d = r.int('hidden_size');
    const c = readPeer(r, d, r.oneOf('mode'));
    r.finish();
    return c;
  },
  params: peerParams,
  state: peerState,
  layout(c, tokens) {
    const T = tokens as number;
    return layerLayout({
      T,
      x: [T, c.d],
      seeds: [['dy', [T, c.d]]],
      params: peerParams(c),
      state: peerState(c),
      mode: c.mode,
      outputs: [['out.y', [T, c.d]]],
      idx: [['idx.experts', [T, c.H, c.k]]],
    });
  },
};
