// The `peer` feed-forward kind of the reference LM (lm.ts): PEER on the layers listed in `peer_layers`, the dense
// MLP everywhere else (the paper replaces the FFN of the middle block only; docs/spec.md).
//
// Dimension legend:   T tokens   d model dim
//
// Checkpoint names, for layer i:
//   i in peer_layers:  model.layers.<i>.mlp.<PEER names>  (query.weight, …, w_down, w_up; see peer.ts)
//                      state model.layers.<i>.mlp.query_bn.running_{mean,var}
//   otherwise:         model.layers.<i>.mlp.<dense names> (up_proj.weight, down_proj.weight, …; see dense-ffn.ts)
// One `activation` key serves both (relu or gelu); intermediate_size is needed only when some layer is dense.

import {
  denseFfnBackward,
  denseFfnForward,
  denseFfnGrads,
  denseFfnWeights,
  type DenseFfnConfig,
  type DenseFfnSaved,
} from './dense-ffn.ts';
import type { FfnBackwardCtx, FfnForwardCtx, FfnPass } from './lm-ffn.ts';
import {
  peerBackward,
  peerDims,
  peerForward,
  type PeerConfig,
  type PeerParams,
  type PeerSaved,
  type PeerState,
} from './peer.ts';

/** One layer's saved values: PEER's or the dense MLP's. */
export type PeerLayerSaved = { kind: 'peer'; saved: PeerSaved } | { kind: 'dense'; saved: DenseFfnSaved };

export class PeerPass implements FfnPass {
  readonly kind = 'peer';
  readonly saved: PeerLayerSaved[] = []; // by layer
  constructor(
    readonly c: PeerConfig,
    readonly layers: readonly number[], // peer_layers
    readonly dense: DenseFfnConfig | null, // the other layers' MLP (null when every layer is PEER)
  ) {}
  forward(ctx: FfnForwardCtx, u: Float64Array, out: Float64Array): void {
    const T = ctx.dims.T;
    const p = ctx.params('mlp.');
    if (!this.layers.includes(ctx.layer)) {
      const mlp = this.dense!; // a dense layer exists only when the config has its keys
      this.saved[ctx.layer] = { kind: 'dense', saved: denseFfnForward(out, u, denseFfnWeights(mlp, p), mlp, T) };
      return;
    }
    const dq = this.c.H * this.c.dk;
    const next: PeerState | null =
      this.c.mode === 'train'
        ? { 'query_bn.running_mean': new Float64Array(dq), 'query_bn.running_var': new Float64Array(dq) } // (dq) each
        : null;
    const state = ctx.state('mlp.') as PeerState;
    const saved = peerForward(out, u, p as PeerParams, state, next, peerDims(this.c, T), this.c);
    if (next) {
      ctx.setNext('mlp.query_bn.running_mean', next['query_bn.running_mean']);
      ctx.setNext('mlp.query_bn.running_var', next['query_bn.running_var']);
    }
    this.saved[ctx.layer] = { kind: 'peer', saved };
  }
  backward(ctx: FfnBackwardCtx, u: Float64Array, dout: Float64Array, du: Float64Array): void {
    const T = ctx.dims.T;
    const p = ctx.params('mlp.');
    const g = ctx.grads('mlp.');
    const s = this.saved[ctx.layer];
    if (s.kind === 'dense') {
      const mlp = this.dense!;
      denseFfnBackward(du, denseFfnGrads(g), dout, u, denseFfnWeights(mlp, p), s.saved, mlp, T);
      return;
    }
    peerBackward(du, g as PeerParams, dout, u, p as PeerParams, s.saved, peerDims(this.c, T), this.c);
  }
}
