// Llama-style pre-norm decoder LM on a Device (float32), every ffn kind, forward to loss and backward to every
// parameter — the twin of reference/lm.ts.
//
// Dimension legend:
//   B sequences, S positions, T = B·S tokens, V vocabulary, d model dim, L layers, nH query heads, nKV key/value
//   heads, hd = d / nH head dim
//
// One layer i (h is the residual stream, (T, d)):
//   a = RMSNorm(h; input_layernorm);  q, k, v = a·Wqᵀ, a·Wkᵀ, a·Wvᵀ;  q, k ← RoPE
//   h1 = h + Attn(q, k, v)·Woᵀ;  u = RMSNorm(h1; post_attention_layernorm);  h2 = h1 + FFN_i(u)
//   TopK `placement: hidden`: h2 ← TopK(h2) on layers i < L − n_last_non_topk
// logits = RMSNorm(h_L; model.norm)·headᵀ (head = embed_tokens when tied); out.loss = mean next-token CE +
// Σ_name coef_name·(aux averaged over the layers — for Monet, the routers — that produce it).
// Feed-forward by config.ffn (NAMES.md): dense; smoe (block_sparse_moe.*); topk (topk-ffn layers below
// L − n_last_non_topk with placement 'ffn', dense ReLU MLPs otherwise); peer (peer_layers, dense elsewhere with the
// same activation); monet (a router where i % moe_groups == 0, reused by the group; moe.* per layer).
// Backward walks the same steps in reverse and accumulates into the gradient buffers. Monet routers: every layer
// of the group adds into the router's dg1/dg2; the group's first layer (reached last going backward) adds the aux
// gradients and runs the router backward into its own u gradient.

import type { Scope } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { numel, type TensorMap } from '../tensor.ts';
import { cfgAux, cfgBool, cfgEnum, cfgInt, cfgNum, type Config } from '../../reference/common.ts';
import type { CaseIO } from '../backend/run-case.ts';
import { parseDenseConfig, parsePeerConfig, parseRouterConfig, parseSmoeConfig } from '../backend/run-case.ts';
import { linearBackward, linearForward } from './common.ts';
import { denseFfnBackward, denseFfnForward, type DenseFfnConfig, type DenseFfnSaved } from './dense-ffn.ts';
import { smoeBackward, smoeForward, type SmoeConfig, type SmoeSaved } from './smoe.ts';
import {
  topkBackward,
  topkFfnBackward,
  topkFfnForward,
  topkForward,
  type TopkFfnSaved,
  type TopkSaved,
} from './topk.ts';
import { peerBackward, peerForward, type PeerConfig, type PeerSaved } from './peer.ts';
import {
  monetAuxBackward,
  monetAuxForward,
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterConfig,
  type MonetRouterSaved,
} from './monet-router.ts';
import { monetHdBackward, monetHdForward, type MonetHdSaved } from './monet-hd.ts';
import { monetVdBackward, monetVdForward, type MonetVdSaved } from './monet-vd.ts';

export interface LmConfig {
  V: number;
  d: number;
  L: number;
  nH: number;
  nKV: number;
  hd: number;
  eps: number;
  theta: number;
  maxPos: number;
  tied: boolean;
  ffn: 'dense' | 'smoe' | 'topk' | 'peer' | 'monet';
  mode: 'train' | 'eval';
  dense: DenseFfnConfig | null; // dense layers (dense, peer's non-PEER layers, topk's dense ReLU layers)
  smoe: SmoeConfig | null;
  aux: Record<string, number>;
  topk: { F: number; k: number; alpha: number; placement: 'ffn' | 'hidden'; nLast: number } | null;
  peer: (PeerConfig & { layers: number[] }) | null;
  monet:
    | (MonetRouterConfig & { m: number; groups: number; decompose: 'vertical' | 'horizontal'; unifEps: number })
    | null;
}

export function parseLmConfig(c: Config, where: string): LmConfig {
  const d = cfgInt(c, 'hidden_size', where),
    nH = cfgInt(c, 'num_attention_heads', where),
    nKV = cfgInt(c, 'num_key_value_heads', where);
  if (d % nH !== 0) throw new Error(`${where}: config.hidden_size ${d} is not a multiple of num_attention_heads ${nH}`);
  if (nH % nKV !== 0)
    throw new Error(`${where}: config.num_attention_heads ${nH} is not a multiple of num_key_value_heads ${nKV}`);
  if ((d / nH) % 2 !== 0)
    throw new Error(
      `${where}: the head dim hidden_size/num_attention_heads = ${d}/${nH} = ${d / nH} must be even (RoPE rotates pairs)`,
    );
  const ffn = cfgEnum(c, 'ffn', ['dense', 'smoe', 'topk', 'peer', 'monet'] as const, where);
  const L = cfgInt(c, 'num_hidden_layers', where);
  const cfg: LmConfig = {
    V: cfgInt(c, 'vocab_size', where),
    d,
    L,
    nH,
    nKV,
    hd: d / nH,
    eps: cfgNum(c, 'rms_norm_eps', where, 1e-6),
    theta: cfgNum(c, 'rope_theta', where, 10000),
    maxPos: cfgInt(c, 'max_position_embeddings', where),
    tied: cfgBool(c, 'tie_word_embeddings', where, false),
    ffn,
    mode: cfgEnum(c, 'mode', ['train', 'eval'] as const, where, 'train'),
    dense: null,
    smoe: null,
    aux: {},
    topk: null,
    peer: null,
    monet: null,
  };
  if (ffn === 'dense') cfg.dense = parseDenseConfig(c, where);
  if (ffn === 'smoe') {
    cfg.smoe = parseSmoeConfig(c, where);
    cfg.aux = cfgAux(c, ['balance', 'z'], where);
  }
  if (ffn === 'topk') {
    cfg.topk = {
      F: cfgInt(c, 'intermediate_size', where),
      k: cfgInt(c, 'k', where),
      alpha: cfgNum(c, 'alpha', where),
      placement: cfgEnum(c, 'topk_placement', ['ffn', 'hidden'] as const, where, 'ffn'),
      nLast: cfgInt(c, 'n_last_non_topk', where, 0, 2),
    };
    cfg.dense = { d, F: cfg.topk.F, activation: 'relu' }; // "keep the dense activation" (our reading, as the reference)
  }
  if (ffn === 'peer') {
    const layers = c.peer_layers;
    if (!Array.isArray(layers) || !layers.every((v) => Number.isInteger(v) && v >= 0 && v < L))
      throw new Error(
        `${where}: config.peer_layers: expected an array of layer indices in [0, ${L}), found ${JSON.stringify(layers)}`,
      );
    cfg.peer = { ...parsePeerConfig({ ...c, hidden_size: d }, where), layers: layers as number[] };
    cfg.dense = { d, F: cfgInt(c, 'intermediate_size', where), activation: cfg.peer.activation };
  }
  if (ffn === 'monet') {
    cfg.monet = {
      ...parseRouterConfig(c, where),
      m: cfgInt(c, 'moe_dim', where),
      groups: cfgInt(c, 'moe_groups', where),
      decompose: cfgEnum(c, 'moe_decompose', ['vertical', 'horizontal'] as const, where),
      unifEps: cfgNum(c, 'unif_eps', where, 1e-10),
    };
    if (cfg.monet.decompose === 'vertical' && cfg.monet.m % 2 !== 0) {
      throw new Error(
        `${where}: config.moe_dim: expected an even number (Monet-VD splits each expert in halves), found ${cfg.monet.m}`,
      );
    }
    if (cfg.monet.decompose === 'vertical' && d % 2 !== 0)
      throw new Error(`${where}: config.hidden_size: expected an even number for Monet-VD, found ${d}`);
    cfgEnum(c, 'hidden_act', ['relu2'] as const, where, 'relu2');
    cfg.aux = cfgAux(c, ['unif', 'amb'], where);
  }
  return cfg;
}

/** Every parameter of the model, checkpoint names and shapes. */
export function lmParamShapes(cfg: LmConfig): [string, number[]][] {
  const { V, d, L, nH, nKV, hd } = cfg;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [V, d]]];
  for (let i = 0; i < L; i++) {
    const pre = `model.layers.${i}.`;
    out.push(
      [`${pre}input_layernorm.weight`, [d]],
      [`${pre}self_attn.q_proj.weight`, [nH * hd, d]],
      [`${pre}self_attn.k_proj.weight`, [nKV * hd, d]],
      [`${pre}self_attn.v_proj.weight`, [nKV * hd, d]],
      [`${pre}self_attn.o_proj.weight`, [d, nH * hd]],
      [`${pre}post_attention_layernorm.weight`, [d]],
    );
    for (const [n, s] of ffnParamShapes(cfg, i)) out.push([pre + n, s]);
  }
  out.push(['model.norm.weight', [d]]);
  if (!cfg.tied) out.push(['lm_head.weight', [V, d]]);
  return out;
}

function denseShapes(c: DenseFfnConfig, prefix: string): [string, number[]][] {
  const out: [string, number[]][] = [];
  if (c.activation === 'swiglu') out.push([`${prefix}gate_proj.weight`, [c.F, c.d]]);
  out.push([`${prefix}up_proj.weight`, [c.F, c.d]], [`${prefix}down_proj.weight`, [c.d, c.F]]);
  return out;
}

function ffnParamShapes(cfg: LmConfig, i: number): [string, number[]][] {
  const d = cfg.d;
  switch (cfg.ffn) {
    case 'dense':
    case 'topk':
      return denseShapes(cfg.dense!, 'mlp.');
    case 'smoe': {
      const { E, F, activation } = cfg.smoe!;
      const out: [string, number[]][] = [['block_sparse_moe.gate.weight', [E, d]]];
      for (let e = 0; e < E; e++) {
        out.push(
          [`block_sparse_moe.experts.${e}.w1.weight`, [F, d]],
          [`block_sparse_moe.experts.${e}.w2.weight`, [d, F]],
        );
        if (activation === 'swiglu') out.push([`block_sparse_moe.experts.${e}.w3.weight`, [F, d]]);
      }
      return out;
    }
    case 'peer': {
      const p = cfg.peer!;
      if (!p.layers.includes(i)) return denseShapes(cfg.dense!, 'mlp.');
      const dq = p.H * p.dk;
      return [
        ['mlp.query.weight', [dq, d]],
        ['mlp.query.bias', [dq]],
        ['mlp.query_bn.weight', [dq]],
        ['mlp.query_bn.bias', [dq]],
        ['mlp.sub_keys', [2, p.n, p.dk / 2]],
        ['mlp.w_down', [p.N, d]],
        ['mlp.w_up', [p.N, d]],
      ];
    }
    case 'monet': {
      const { E, H, m, groups, decompose } = cfg.monet!;
      const out: [string, number[]][] = [];
      if (i % groups === 0) out.push(['router.w1.weight', [H * E, d]], ['router.w2.weight', [H * E, d]]);
      if (decompose === 'horizontal') {
        out.push(
          ['moe.u.weight', [E * m, d]],
          ['moe.u.bias', [E * m]],
          ['moe.v.weight', [d, E * m]],
          ['moe.b', [E, d]],
        );
      } else {
        const Em = (E * m) / 2,
          dh = d / 2;
        out.push(['moe.u1.weight', [Em, d]], ['moe.u1.bias', [Em]], ['moe.u2.weight', [Em, d]], ['moe.u2.bias', [Em]]);
        for (const v of ['v11', 'v12', 'v21', 'v22']) out.push([`moe.${v}.weight`, [dh, Em]]);
        out.push(['moe.b1', [E, dh]], ['moe.b2', [E, dh]]);
      }
      return out;
    }
  }
}

/** BatchNorm running statistics of the model (names without `state.`), shapes. */
export function lmStateShapes(cfg: LmConfig): [string, number[]][] {
  const out: [string, number[]][] = [];
  for (let i = 0; i < cfg.L; i++) {
    if (cfg.ffn === 'peer' && cfg.peer!.layers.includes(i)) {
      const dq = cfg.peer!.H * cfg.peer!.dk;
      out.push(
        [`model.layers.${i}.mlp.query_bn.running_mean`, [dq]],
        [`model.layers.${i}.mlp.query_bn.running_var`, [dq]],
      );
    }
    if (cfg.ffn === 'monet' && i % cfg.monet!.groups === 0) {
      for (const r of ['norm1', 'norm2'])
        for (const s of ['running_mean', 'running_var'])
          out.push([`model.layers.${i}.router.${r}.${s}`, [cfg.monet!.H]]);
    }
  }
  return out;
}

/** The model on a device: parameters, their gradients (null in forward-only use) and state, by full name. */
export interface LmModel {
  cfg: LmConfig;
  params: Map<string, F32>;
  grads: Map<string, F32> | null;
  state: Map<string, F32>;
  /** Forward-only taps for the interpretability tools (src/interp/wasm-forward.ts); absent in training. */
  hooks?: LmHooks;
}

/**
 * Called during lmForward, in order, with the tensors of the layer just computed. A hook may read them and change
 * `out` (with kernels, or directly on a host-memory device); the forward then continues from `out`.
 */
export interface LmHooks {
  /** After layer i's feed-forward: u (T, d) its input, out (T, d) its output before the residual add. */
  afterFfn?(sc: Scope, layer: number, io: { u: F32; out: F32; ffn: FfnSaved; router: MonetRouterSaved | null }): void;
  /** After a TopK `placement: hidden` map: out (T, d) is the layer's new residual stream. */
  afterHidden?(sc: Scope, layer: number, out: F32): void;
}

export type FfnSaved =
  | { kind: 'dense'; s: DenseFfnSaved }
  | { kind: 'topk-ffn'; s: TopkFfnSaved }
  | { kind: 'smoe'; s: SmoeSaved; w: ReturnType<typeof smoeWeights> }
  | { kind: 'peer'; s: PeerSaved }
  | { kind: 'monet-hd'; s: MonetHdSaved }
  | { kind: 'monet-vd'; s: MonetVdSaved };

interface LayerSaved {
  h: F32; // (T, d) layer input (residual stream)
  a: F32; // (T, d) input_layernorm output
  rstd1: F32; // (T)
  q: F32; // (T, nH·hd) after RoPE
  k: F32; // (T, nKV·hd) after RoPE
  v: F32; // (T, nKV·hd)
  probs: F32; // (B, nH, S, S)
  att: F32; // (T, nH·hd) attention output (o_proj input)
  h1: F32; // (T, d) after the attention residual
  u: F32; // (T, d) post_attention_layernorm output (FFN input)
  rstd2: F32; // (T)
  ffn: FfnSaved;
  topkHidden: TopkSaved | null; // placement 'hidden'
}

interface RouterSaved {
  layer: number;
  saved: MonetRouterSaved;
  dg1: F32; // (T, H, E) accumulated by every layer of the group in backward
  dg2: F32;
}

export interface LmSaved {
  B: number;
  S: number;
  tokens: I32;
  layers: LayerSaved[];
  routers: RouterSaved[];
  hL: F32; // (T, d) final residual stream
  hn: F32; // (T, d) model.norm output
  rstdL: F32;
  probs: F32; // (T, V) softmax of the logits
  logits: F32; // (T, V)
  loss: F32; // (1) out.loss
  aux: Map<string, F32>; // 'loss_balance' → (1), averaged over producers
  auxCount: Map<string, number>;
}

function smoeWeights(m: LmModel, sc: Scope, i: number) {
  // Mixtral stores one tensor per expert; the grouped kernels read them stacked (E, ·, ·). Stacking is a device copy.
  const c = m.cfg.smoe!;
  const pre = `model.layers.${i}.block_sparse_moe.`;
  const stack = (r: string, grads: boolean): F32 | null => {
    const src = grads ? m.grads : m.params;
    if (!src) return null;
    const per = r === 'w2' ? c.d * c.F : c.F * c.d;
    const out = sc.f32(c.E * per);
    for (let e = 0; e < c.E; e++)
      sc.dev.kernels.copyBlock(out, src.get(`${pre}experts.${e}.${r}.weight`)!, {
        rows: 1,
        cols: per,
        dstLd: per,
        srcLd: per,
        dstOffset: e * per,
        srcOffset: 0,
        accumulate: false,
      });
    return out;
  };
  return {
    w: {
      gate: m.params.get(`${pre}gate.weight`)!,
      w1: stack('w1', false)!,
      w2: stack('w2', false)!,
      w3: c.activation === 'swiglu' ? stack('w3', false) : null,
    },
    stack,
  };
}

function isTopkLayer(cfg: LmConfig, i: number): boolean {
  return cfg.ffn === 'topk' && i < cfg.L - cfg.topk!.nLast;
}

export function lmForward(sc: Scope, m: LmModel, tokens: I32, B: number, S: number): LmSaved {
  const kn = sc.dev.kernels;
  const { cfg } = m;
  const { V, d, L, nH, nKV, hd, eps, theta } = cfg;
  const T = B * S;
  if (S > cfg.maxPos) throw new Error(`lm: sequence length ${S} exceeds max_position_embeddings ${cfg.maxPos}`);
  const P = (name: string): F32 => {
    const t = m.params.get(name);
    if (!t) throw new Error(`lm: missing parameter ${name}`);
    return t;
  };
  const aux = new Map<string, F32>();
  const auxCount = new Map<string, number>();
  const auxNames =
    cfg.ffn === 'smoe' ? ['loss_balance', 'loss_z'] : cfg.ffn === 'monet' ? ['loss_unif', 'loss_amb'] : [];
  const producers = cfg.ffn === 'smoe' ? L : cfg.ffn === 'monet' ? Math.ceil(L / cfg.monet!.groups) : 0;
  for (const n of auxNames) {
    aux.set(n, sc.f32(1));
    auxCount.set(n, producers);
  }
  let h = sc.f32(T * d);
  kn.gatherRows(h, P('model.embed_tokens.weight'), tokens, { rows: T, cols: d });
  const layers: LayerSaved[] = [];
  const routers: RouterSaved[] = [];
  let router: RouterSaved | null = null;
  for (let i = 0; i < L; i++) {
    const pre = `model.layers.${i}.`;
    // attention block
    const a = sc.f32(T * d),
      rstd1 = sc.f32(T);
    kn.rmsnorm(a, rstd1, h, P(`${pre}input_layernorm.weight`), { rows: T, d, eps });
    const q0 = sc.f32(T * nH * hd),
      k0 = sc.f32(T * nKV * hd),
      v = sc.f32(T * nKV * hd);
    linearForward(kn, q0, a, P(`${pre}self_attn.q_proj.weight`), null, T, d, nH * hd);
    linearForward(kn, k0, a, P(`${pre}self_attn.k_proj.weight`), null, T, d, nKV * hd);
    linearForward(kn, v, a, P(`${pre}self_attn.v_proj.weight`), null, T, d, nKV * hd);
    const q = sc.f32(T * nH * hd),
      k = sc.f32(T * nKV * hd);
    kn.rope(q, q0, { B, S, heads: nH, hd, theta });
    kn.rope(k, k0, { B, S, heads: nKV, hd, theta });
    const att = sc.f32(T * nH * hd),
      probs = sc.f32(B * nH * S * S);
    kn.attention(att, probs, q, k, v, { B, S, nH, nKV, hd });
    const h1 = sc.f32(T * d);
    linearForward(kn, h1, att, P(`${pre}self_attn.o_proj.weight`), null, T, nH * hd, d);
    kn.axpby(h1, h, { n: T * d, alpha: 1, beta: 1 });
    // feed-forward block
    const u = sc.f32(T * d),
      rstd2 = sc.f32(T);
    kn.rmsnorm(u, rstd2, h1, P(`${pre}post_attention_layernorm.weight`), { rows: T, d, eps });
    const f = sc.f32(T * d);
    let ffn: FfnSaved;
    const denseW = () => ({
      gate: cfg.dense!.activation === 'swiglu' ? P(`${pre}mlp.gate_proj.weight`) : null,
      up: P(`${pre}mlp.up_proj.weight`),
      down: P(`${pre}mlp.down_proj.weight`),
    });
    if (cfg.ffn === 'smoe') {
      const sw = smoeWeights(m, sc, i);
      const s = smoeForward(
        sc,
        f,
        { balance: aux.get('loss_balance')!, z: aux.get('loss_z')! },
        u,
        sw.w,
        cfg.smoe!,
        T,
        1 / producers,
      );
      ffn = { kind: 'smoe', s, w: sw };
    } else if (cfg.ffn === 'topk' && isTopkLayer(cfg, i) && cfg.topk!.placement === 'ffn') {
      const { F, k: kk, alpha } = cfg.topk!;
      ffn = {
        kind: 'topk-ffn',
        s: topkFfnForward(
          sc,
          f,
          u,
          { up: P(`${pre}mlp.up_proj.weight`), down: P(`${pre}mlp.down_proj.weight`) },
          { d, F, k: kk, alpha },
          T,
        ),
      };
    } else if (cfg.ffn === 'peer' && cfg.peer!.layers.includes(i)) {
      const st = {
        runningMean: m.state.get(`${pre}mlp.query_bn.running_mean`)!,
        runningVar: m.state.get(`${pre}mlp.query_bn.running_var`)!,
      };
      const pw = {
        query: P(`${pre}mlp.query.weight`),
        queryBias: P(`${pre}mlp.query.bias`),
        bnWeight: P(`${pre}mlp.query_bn.weight`),
        bnBias: P(`${pre}mlp.query_bn.bias`),
        subKeys: P(`${pre}mlp.sub_keys`),
        wDown: P(`${pre}mlp.w_down`),
        wUp: P(`${pre}mlp.w_up`),
      };
      ffn = { kind: 'peer', s: peerForward(sc, f, u, pw, st, cfg.peer!, T) };
    } else if (cfg.ffn === 'monet') {
      const mc = cfg.monet!;
      if (i % mc.groups === 0) {
        const st = (r: string, s: string) => m.state.get(`${pre}router.${r}.${s}`)!;
        const saved = monetRouterForward(
          sc,
          u,
          { w1: P(`${pre}router.w1.weight`), w2: P(`${pre}router.w2.weight`) },
          {
            mean1: st('norm1', 'running_mean'),
            var1: st('norm1', 'running_var'),
            mean2: st('norm2', 'running_mean'),
            var2: st('norm2', 'running_var'),
          },
          mc,
          T,
        );
        monetAuxForward(
          sc,
          aux.get('loss_unif')!,
          aux.get('loss_amb')!,
          saved,
          mc.H,
          mc.E,
          T,
          mc.unifEps,
          1 / producers,
        );
        router = { layer: i, saved, dg1: sc.f32(T * mc.H * mc.E), dg2: sc.f32(T * mc.H * mc.E) };
        routers.push(router);
      }
      const dims = { T, d, H: mc.H, E: mc.E, m: mc.m };
      const g1 = router!.saved.g1,
        g2 = router!.saved.g2;
      if (mc.decompose === 'horizontal') {
        const w = {
          u: P(`${pre}moe.u.weight`),
          ub: P(`${pre}moe.u.bias`),
          v: P(`${pre}moe.v.weight`),
          b: P(`${pre}moe.b`),
        };
        ffn = { kind: 'monet-hd', s: monetHdForward(sc, f, u, g1, g2, w, dims) };
      } else {
        const w = {
          u1: P(`${pre}moe.u1.weight`),
          u1b: P(`${pre}moe.u1.bias`),
          u2: P(`${pre}moe.u2.weight`),
          u2b: P(`${pre}moe.u2.bias`),
          v11: P(`${pre}moe.v11.weight`),
          v12: P(`${pre}moe.v12.weight`),
          v21: P(`${pre}moe.v21.weight`),
          v22: P(`${pre}moe.v22.weight`),
          b1: P(`${pre}moe.b1`),
          b2: P(`${pre}moe.b2`),
        };
        ffn = { kind: 'monet-vd', s: monetVdForward(sc, f, u, g1, g2, w, dims) };
      }
    } else {
      ffn = { kind: 'dense', s: denseFfnForward(sc, f, u, denseW(), cfg.dense!, T) };
    }
    m.hooks?.afterFfn?.(sc, i, { u, out: f, ffn, router: cfg.ffn === 'monet' ? router!.saved : null });
    let h2 = sc.f32(T * d);
    kn.copyBlock(h2, h1, { rows: 1, cols: T * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    kn.axpby(h2, f, { n: T * d, alpha: 1, beta: 1 });
    let topkHidden: TopkSaved | null = null;
    if (isTopkLayer(cfg, i) && cfg.topk!.placement === 'hidden') {
      const y = sc.f32(T * d);
      topkHidden = topkForward(sc, y, h2, { k: cfg.topk!.k, alpha: cfg.topk!.alpha }, T, d);
      h2 = y;
      m.hooks?.afterHidden?.(sc, i, h2);
    }
    layers.push({ h, a, rstd1, q, k, v, probs, att, h1, u, rstd2, ffn, topkHidden });
    h = h2;
  }
  const hn = sc.f32(T * d),
    rstdL = sc.f32(T);
  kn.rmsnorm(hn, rstdL, h, P('model.norm.weight'), { rows: T, d, eps });
  const logits = sc.f32(T * V),
    probs = sc.f32(T * V),
    loss = sc.f32(1);
  linearForward(kn, logits, hn, P(cfg.tied ? 'model.embed_tokens.weight' : 'lm_head.weight'), null, T, d, V);
  if (S < 2) throw new Error(`lm: need at least 2 positions per sequence for next-token loss, found S = ${S}`);
  kn.crossEntropy(loss, probs, logits, tokens, { B, S, V, scale: 1 / (B * (S - 1)) });
  const coef: Record<string, string> = { loss_balance: 'balance', loss_z: 'z', loss_unif: 'unif', loss_amb: 'amb' };
  for (const [n, t] of aux) kn.axpby(loss, t, { n: 1, alpha: cfg.aux[coef[n]], beta: 1 });
  return { B, S, tokens, layers, routers, hL: h, hn, rstdL, probs, logits, loss, aux, auxCount };
}

/** Backward of out.loss, accumulating into m.grads. */
export function lmBackward(sc: Scope, m: LmModel, s: LmSaved): void {
  const kn = sc.dev.kernels;
  const { cfg } = m;
  const { V, d, L, nH, nKV, hd, theta } = cfg;
  const { B, S } = s;
  const T = B * S;
  const P = (n: string) => m.params.get(n)!;
  const G = (n: string): F32 => {
    const g = m.grads?.get(n);
    if (!g) throw new Error(`lm backward: missing gradient buffer for ${n}`);
    return g;
  };
  const headName = cfg.tied ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const dlogits = sc.f32(T * V);
  kn.crossEntropyBackward(dlogits, s.probs, s.tokens, { B, S, V, scale: 1 / (B * (S - 1)) });
  const dhn = sc.f32(T * d);
  linearBackward(kn, dhn, G(headName), null, dlogits, s.hn, P(headName), T, d, V);
  let dh = sc.f32(T * d);
  kn.rmsnormBackward(dh, G('model.norm.weight'), dhn, s.hL, P('model.norm.weight'), s.rstdL, { rows: T, d });
  for (let i = L - 1; i >= 0; i--) {
    const pre = `model.layers.${i}.`;
    const ls = s.layers[i];
    if (ls.topkHidden) {
      const dz = sc.f32(T * d);
      topkBackward(sc, dz, dh, ls.topkHidden, { k: cfg.topk!.k, alpha: cfg.topk!.alpha }, T, d);
      dh = dz;
    }
    // h2 = h1 + FFN(u):  dh1 = dh2 + RMSNorm backward of dFFN input
    const du = sc.f32(T * d);
    const f = ls.ffn;
    const denseW = () => ({
      gate: cfg.dense!.activation === 'swiglu' ? P(`${pre}mlp.gate_proj.weight`) : null,
      up: P(`${pre}mlp.up_proj.weight`),
      down: P(`${pre}mlp.down_proj.weight`),
    });
    const denseG = () => ({
      gate: cfg.dense!.activation === 'swiglu' ? G(`${pre}mlp.gate_proj.weight`) : null,
      up: G(`${pre}mlp.up_proj.weight`),
      down: G(`${pre}mlp.down_proj.weight`),
    });
    switch (f.kind) {
      case 'dense':
        denseFfnBackward(sc, du, denseG(), dh, ls.u, denseW(), f.s, cfg.dense!, T);
        break;
      case 'topk-ffn': {
        const { F, k, alpha } = cfg.topk!;
        topkFfnBackward(
          sc,
          du,
          { up: G(`${pre}mlp.up_proj.weight`), down: G(`${pre}mlp.down_proj.weight`) },
          dh,
          ls.u,
          { up: P(`${pre}mlp.up_proj.weight`), down: P(`${pre}mlp.down_proj.weight`) },
          f.s,
          { d, F, k, alpha },
          T,
        );
        break;
      }
      case 'smoe': {
        const c = cfg.smoe!;
        const bp = `${pre}block_sparse_moe.`;
        // stacked gradient buffers start at zero; their per-expert slices are added to the model's buffers after
        const gw1 = sc.f32(c.E * c.F * d),
          gw2 = sc.f32(c.E * d * c.F),
          gw3 = c.activation === 'swiglu' ? sc.f32(c.E * c.F * d) : null;
        const n = s.auxCount.get('loss_balance')!;
        smoeBackward(
          sc,
          du,
          { gate: G(`${bp}gate.weight`), w1: gw1, w2: gw2, w3: gw3 },
          dh,
          ls.u,
          f.w.w,
          f.s,
          c,
          T,
          cfg.aux.balance / n,
          cfg.aux.z / n,
        );
        const per = c.F * d;
        for (const [r, buf] of [
          ['w1', gw1],
          ['w2', gw2],
          ['w3', gw3],
        ] as const) {
          if (!buf) continue;
          for (let e = 0; e < c.E; e++)
            kn.copyBlock(G(`${bp}experts.${e}.${r}.weight`), buf, {
              rows: 1,
              cols: per,
              dstLd: per,
              srcLd: per,
              dstOffset: 0,
              srcOffset: e * per,
              accumulate: true,
            });
        }
        break;
      }
      case 'peer': {
        const mp = `${pre}mlp.`;
        const pw = {
          query: P(`${mp}query.weight`),
          queryBias: P(`${mp}query.bias`),
          bnWeight: P(`${mp}query_bn.weight`),
          bnBias: P(`${mp}query_bn.bias`),
          subKeys: P(`${mp}sub_keys`),
          wDown: P(`${mp}w_down`),
          wUp: P(`${mp}w_up`),
        };
        const pg = {
          query: G(`${mp}query.weight`),
          queryBias: G(`${mp}query.bias`),
          bnWeight: G(`${mp}query_bn.weight`),
          bnBias: G(`${mp}query_bn.bias`),
          subKeys: G(`${mp}sub_keys`),
          wDown: G(`${mp}w_down`),
          wUp: G(`${mp}w_up`),
        };
        peerBackward(sc, du, pg, dh, ls.u, pw, f.s, cfg.peer!, T);
        break;
      }
      case 'monet-hd':
      case 'monet-vd': {
        const mc = cfg.monet!;
        const r = [...s.routers].reverse().find((x) => x.layer <= i)!;
        const dims = { T, d, H: mc.H, E: mc.E, m: mc.m };
        const mp = `${pre}moe.`;
        if (f.kind === 'monet-hd') {
          const w = { u: P(`${mp}u.weight`), ub: P(`${mp}u.bias`), v: P(`${mp}v.weight`), b: P(`${mp}b`) };
          const g = { u: G(`${mp}u.weight`), ub: G(`${mp}u.bias`), v: G(`${mp}v.weight`), b: G(`${mp}b`) };
          monetHdBackward(sc, du, g, r.dg1, r.dg2, dh, ls.u, r.saved.g1, r.saved.g2, w, f.s, dims);
        } else {
          const names = [
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
          ];
          const keys = ['u1', 'u1b', 'u2', 'u2b', 'v11', 'v12', 'v21', 'v22', 'b1', 'b2'] as const;
          const w = Object.fromEntries(keys.map((k, j) => [k, P(mp + names[j])])) as Record<(typeof keys)[number], F32>;
          const g = Object.fromEntries(keys.map((k, j) => [k, G(mp + names[j])])) as Record<(typeof keys)[number], F32>;
          monetVdBackward(sc, du, g, r.dg1, r.dg2, dh, ls.u, r.saved.g1, r.saved.g2, w, f.s, dims);
        }
        if (r.layer === i) {
          // the group's first layer: its router's gradients are complete; add the aux terms and run the router
          const n = s.auxCount.get('loss_unif')!;
          monetAuxBackward(sc, r.dg1, r.dg2, r.saved, mc.H, mc.E, T, mc.unifEps, cfg.aux.unif / n, cfg.aux.amb / n);
          monetRouterBackward(
            sc,
            du,
            { w1: G(`${pre}router.w1.weight`), w2: G(`${pre}router.w2.weight`) },
            r.dg1,
            r.dg2,
            ls.u,
            { w1: P(`${pre}router.w1.weight`), w2: P(`${pre}router.w2.weight`) },
            r.saved,
            mc,
            T,
          );
        }
        break;
      }
    }
    const dh1 = sc.f32(T * d);
    kn.copyBlock(dh1, dh, { rows: 1, cols: T * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    kn.rmsnormBackward(
      dh1,
      G(`${pre}post_attention_layernorm.weight`),
      du,
      ls.h1,
      P(`${pre}post_attention_layernorm.weight`),
      ls.rstd2,
      { rows: T, d },
    );
    // h1 = h + att·Woᵀ
    const datt = sc.f32(T * nH * hd);
    linearBackward(
      kn,
      datt,
      G(`${pre}self_attn.o_proj.weight`),
      null,
      dh1,
      ls.att,
      P(`${pre}self_attn.o_proj.weight`),
      T,
      nH * hd,
      d,
    );
    const dq = sc.f32(T * nH * hd),
      dk = sc.f32(T * nKV * hd),
      dv = sc.f32(T * nKV * hd);
    kn.attentionBackward(dq, dk, dv, datt, ls.q, ls.k, ls.v, ls.probs, { B, S, nH, nKV, hd });
    const dq0 = sc.f32(T * nH * hd),
      dk0 = sc.f32(T * nKV * hd);
    kn.ropeBackward(dq0, dq, { B, S, heads: nH, hd, theta });
    kn.ropeBackward(dk0, dk, { B, S, heads: nKV, hd, theta });
    const da = sc.f32(T * d);
    linearBackward(
      kn,
      da,
      G(`${pre}self_attn.q_proj.weight`),
      null,
      dq0,
      ls.a,
      P(`${pre}self_attn.q_proj.weight`),
      T,
      d,
      nH * hd,
    );
    linearBackward(
      kn,
      da,
      G(`${pre}self_attn.k_proj.weight`),
      null,
      dk0,
      ls.a,
      P(`${pre}self_attn.k_proj.weight`),
      T,
      d,
      nKV * hd,
    );
    linearBackward(
      kn,
      da,
      G(`${pre}self_attn.v_proj.weight`),
      null,
      dv,
      ls.a,
      P(`${pre}self_attn.v_proj.weight`),
      T,
      d,
      nKV * hd,
    );
    const dh0 = sc.f32(T * d);
    kn.copyBlock(dh0, dh1, { rows: 1, cols: T * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    kn.rmsnormBackward(dh0, G(`${pre}input_layernorm.weight`), da, ls.h, P(`${pre}input_layernorm.weight`), ls.rstd1, {
      rows: T,
      d,
    });
    dh = dh0;
  }
  kn.scatterAddRows(G('model.embed_tokens.weight'), dh, s.tokens, { rows: T, cols: d });
}

/** Fixture case `lm` on a device: out.loss, out.logits, aux averages, grad.param.*, next.* state. */
export async function runLmCase(io: CaseIO, back: boolean): Promise<TensorMap> {
  const cfg = parseLmConfig(io.c.config, io.where);
  const [B, S] = io.inp.shapeOf('in.tokens');
  // Checked on the host: on a device an id outside [0, V) would gather a row past the embedding table (garbage on
  // WebGPU, a read of unrelated WASM memory), never an error.
  const ids = io.inp.i32('in.tokens', [B, S]);
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < cfg.V))
      throw new Error(
        `${io.where}: tensor in.tokens: token id ${ids[i]} at row ${Math.floor(i / S)}, position ${i % S} is outside [0, config.vocab_size = ${cfg.V})`,
      );
  }
  const tokens = io.i32('in.tokens', [B, S]);
  const params = new Map<string, F32>();
  const shapes = lmParamShapes(cfg);
  for (const [n, sh] of shapes) params.set(n, io.f32(`param.${n}`, sh));
  const state = new Map<string, F32>();
  for (const [n, sh] of lmStateShapes(cfg)) state.set(n, io.f32(`state.${n}`, sh));
  let grads: Map<string, F32> | null = null;
  if (back) {
    grads = new Map();
    for (const [n, sh] of shapes) grads.set(n, io.grad(`grad.param.${n}`, sh));
  }
  const model: LmModel = { cfg, params, grads, state };
  const saved = lmForward(io.sc, model, tokens, B, S);
  io.out('out.loss', [], saved.loss);
  io.out('out.logits', [B, S, cfg.V], saved.logits);
  for (const [n, t] of saved.aux) {
    // aux tensors hold Σ over producers of value/producers: the average the fixture stores
    io.out(`out.${n}`, [], t);
  }
  if (cfg.mode === 'train') for (const [n, sh] of lmStateShapes(cfg)) io.out(`next.${n}`, sh, state.get(n)!);
  if (back) lmBackward(io.sc, model, saved);
  void numel;
  return io.collect();
}
