// The `peer` feed-forward kind of the reference LM (lm.ts): PEER on the layers listed in `peer_layers`, the dense
// MLP everywhere else (the paper replaces the FFN of the middle block only; SPEC §2.3).
//
// Dimension legend:   T tokens   d model dim
//
// Checkpoint names, for layer i:
//   i in peer_layers:  model.layers.<i>.mlp.<PEER names>  (query.weight, …, w_down, w_up; see peer.ts)
//                      state model.layers.<i>.mlp.query_bn.running_{mean,var}
//   otherwise:         model.layers.<i>.mlp.<dense names> (up_proj.weight, down_proj.weight, …; see dense-ffn.ts)
// One `activation` key serves both (relu or gelu); intermediate_size is needed only when some layer is dense.

import { cfgEnum, type Config } from './common.ts';
import {
  denseFfnBackward,
  denseFfnForward,
  denseFfnGrads,
  denseFfnParamSpecs,
  denseFfnWeights,
  parseDenseFfnConfig,
  type DenseFfnConfig,
  type DenseFfnSaved,
} from './dense-ffn.ts';
import type { FfnDriver } from './lm-ffn.ts';
import {
  PEER_STATE,
  parsePeerConfig,
  peerBackward,
  peerDims,
  peerForward,
  peerOptions,
  peerParamSpecs,
  peerStateSpecs,
  type PeerConfig,
  type PeerParams,
  type PeerSaved,
  type PeerState,
} from './peer.ts';

export interface PeerLmConfig {
  layers: Set<number>; // peer_layers
  peer: PeerConfig;
  dense: DenseFfnConfig | null; // null when every layer is PEER
}

type PeerLmSaved = { kind: 'peer'; saved: PeerSaved } | { kind: 'dense'; saved: DenseFfnSaved };

export const peerDriver: FfnDriver<PeerLmConfig, PeerLmSaved> = {
  parse(raw: Config, cfg, where) {
    const list = raw.peer_layers;
    if (
      !Array.isArray(list) ||
      list.some((i) => !Number.isInteger(i) || i < 0 || i >= cfg.L) ||
      new Set(list).size !== list.length
    ) {
      throw new Error(
        `${where}: config.peer_layers: expected an array of distinct layer indices in [0, ${cfg.L}), found ${JSON.stringify(list)}`,
      );
    }
    cfgEnum(raw, 'activation', ['relu', 'gelu'] as const, where); // shared by the PEER and the dense layers
    const layers = new Set<number>(list as number[]);
    const peer = parsePeerConfig({ ...raw, mode: cfg.mode }, where);
    const dense = layers.size < cfg.L ? parseDenseFfnConfig(raw, where) : null;
    return { layers, peer, dense };
  },
  auxNames: () => [],
  paramSpecs(c, _cfg, i) {
    const specs = c.layers.has(i) ? peerParamSpecs(c.peer) : denseFfnParamSpecs(c.dense!);
    return specs.map((s) => ({ ...s, name: `mlp.${s.name}` }));
  },
  stateSpecs(c, _cfg, i) {
    return c.layers.has(i) ? peerStateSpecs(c.peer).map((s) => ({ ...s, name: `mlp.${s.name}` })) : [];
  },
  forward(c, ctx, u, out) {
    const T = ctx.dims.T;
    if (!c.layers.has(ctx.layer)) {
      return {
        kind: 'dense',
        saved: denseFfnForward(out, u, denseFfnWeights(c.dense!, ctx.params('mlp.')), c.dense!, T),
      };
    }
    const dq = c.peer.H * c.peer.dk;
    const next: PeerState | null =
      c.peer.mode === 'train'
        ? { 'query_bn.running_mean': new Float64Array(dq), 'query_bn.running_var': new Float64Array(dq) } // (dq) each
        : null;
    const saved = peerForward(
      out,
      u,
      ctx.params('mlp.') as PeerParams,
      ctx.state('mlp.') as PeerState,
      next,
      peerDims(c.peer, T),
      peerOptions(c.peer),
    );
    if (next) for (const name of PEER_STATE) ctx.setNext(`mlp.${name}`, next[name]);
    ctx.addMargin(saved.margin);
    return { kind: 'peer', saved };
  },
  backward(c, ctx, s, u, dout, du) {
    const T = ctx.dims.T;
    if (s.kind === 'dense') {
      denseFfnBackward(
        du,
        denseFfnGrads(ctx.grads('mlp.')),
        dout,
        u,
        denseFfnWeights(c.dense!, ctx.params('mlp.')),
        s.saved,
        c.dense!,
        T,
      );
      return;
    }
    peerBackward(
      du,
      ctx.grads('mlp.') as PeerParams,
      dout,
      u,
      ctx.params('mlp.') as PeerParams,
      s.saved,
      peerDims(c.peer, T),
      peerOptions(c.peer),
    );
  },
  examples: () => [
    {
      label: 'peer on layer 1 (gelu)',
      config: {
        peer_layers: [1],
        num_experts: 16,
        heads: 2,
        top_k: 2,
        key_dim: 4,
        activation: 'gelu',
        bn_eps: 1e-5,
        bn_momentum: 0.1,
        intermediate_size: 12,
      },
    },
  ],
};
