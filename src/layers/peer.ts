// PEER (docs/spec.md §2.2, backward §2.5) on a Device (float32) — the twin of reference/peer.ts.
//
// Dimension legend: T tokens, d model dim, N experts (a perfect square), n = √N sub-keys per side, H heads,
//   k experts per head (also the per-half top-k), dk key_dim, dq = H·dk query features
//
// Forward: q = BN(Wq x + bq) (train: batch statistics, running stats updated; eval: running stats);
//   peerRoute: per (t, h) the two half-query sub-key top-k's, the k² candidates, the final top-k ids and scores
//   (ties → lower index at every stage); w = softmax(scores) per head; y = Σ_h Σ_r w·f(w_down[id]·x)·w_up[id].
// Backward: experts (scatter-add into w_down/w_up rows) → softmax → sub-keys and query (scatter-add into the
//   selected sub-key rows) → BN → the query Linear.

import type { Scope } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import { peerSubKeys, type PeerConfig as RefPeerConfig } from '../../reference/peer.ts';
import { linearBackward, linearForward } from './common.ts';

/** The reference's config (src/kinds/peer.ts reads it) plus n = √N sub-keys per half, computed once on the host. */
export interface PeerConfig extends RefPeerConfig {
  n: number;
}

export function devicePeerConfig(c: RefPeerConfig): PeerConfig {
  return { ...c, n: peerSubKeys(c.N) };
}

export interface PeerWeights {
  query: F32; // (dq, d)
  queryBias: F32; // (dq)
  bnWeight: F32; // (dq)
  bnBias: F32; // (dq)
  subKeys: F32; // (2, n, dk/2)
  wDown: F32; // (N, d)
  wUp: F32; // (N, d)
}
export type PeerGrads = { [K in keyof PeerWeights]: F32 | null };

/** BatchNorm running statistics: read in eval mode, updated in place in train mode. */
export interface PeerState {
  runningMean: F32; // (dq)
  runningVar: F32; // (dq)
}

export interface PeerSaved {
  qpre: F32; // (T, dq) Wq x + bq, the BN input
  q: F32; // (T, dq) BN output: the queries
  mean: F32; // (dq) the statistics BN used (batch or running)
  variance: F32; // (dq)
  ids: I32; // (T, H, k) selected expert ids, descending score (idx.experts)
  w: F32; // (T, H, k) softmax weights
  hpre: F32; // (T, H, k) w_down[id]·x
}

export function peerForward(
  sc: Scope,
  y: F32,
  x: F32,
  p: PeerWeights,
  state: PeerState,
  cfg: PeerConfig,
  T: number,
): PeerSaved {
  const kn = sc.dev.kernels;
  const { d, H, k, dk, n } = cfg;
  const dq = H * dk;
  const qpre = sc.f32(T * dq); // (T, dq)
  linearForward(kn, qpre, x, p.query, p.queryBias, T, d, dq);
  let mean: F32, variance: F32;
  if (cfg.mode === 'train') {
    if (T < 2)
      throw new Error(
        `peer (train mode): BatchNorm needs more than 1 token per feature, found T = ${T}; use mode 'eval'`,
      );
    mean = sc.f32(dq);
    variance = sc.f32(dq);
    kn.groupStats(mean, variance, qpre, { outer: T, groups: dq, inner: 1 });
    // BN normalises with the batch statistics; the running stats (updated in place) only matter for eval mode.
    kn.runningStatsUpdate(state.runningMean, state.runningVar, mean, variance, {
      groups: dq,
      count: T,
      momentum: cfg.bnMomentum,
    });
  } else {
    mean = state.runningMean;
    variance = state.runningVar;
  }
  const q = sc.f32(T * dq); // (T, dq)
  kn.batchnorm(q, qpre, mean, variance, p.bnWeight, p.bnBias, { rows: T, cols: dq, eps: cfg.bnEps });
  const ids = sc.i32(T * H * k),
    scores = sc.f32(T * H * k),
    w = sc.f32(T * H * k),
    hpre = sc.f32(T * H * k);
  kn.peerRoute(ids, scores, q, p.subKeys, { T, H, dk, n, k });
  kn.softmaxRows(w, scores, { rows: T * H, n: k });
  kn.fill(y, { n: T * d, value: 0 });
  kn.peerExperts(y, hpre, x, p.wDown, p.wUp, ids, w, { T, H, k, d, kind: cfg.activation });
  return { qpre, q, mean, variance, ids, w, hpre };
}

export function peerBackward(
  sc: Scope,
  dx: F32 | null,
  g: PeerGrads,
  dy: F32,
  x: F32,
  p: PeerWeights,
  s: PeerSaved,
  cfg: PeerConfig,
  T: number,
): void {
  const kn = sc.dev.kernels;
  const { d, H, k, dk, n, N } = cfg;
  const dq = H * dk;
  const dw = sc.f32(T * H * k);
  // The expert kernel scatter-adds into w_down/w_up gradients; give it scratch buffers when those are not wanted.
  const dwDown = g.wDown ?? sc.f32(N * d),
    dwUp = g.wUp ?? sc.f32(N * d);
  const dxTmp = dx ?? sc.f32(T * d);
  kn.peerExpertsBackward(dxTmp, dwDown, dwUp, dw, dy, x, p.wDown, p.wUp, s.ids, s.w, s.hpre, {
    T,
    H,
    k,
    d,
    kind: cfg.activation,
  });
  const dscores = sc.f32(T * H * k);
  kn.softmaxBackward(dscores, s.w, dw, { rows: T * H, n: k });
  const dqn = sc.f32(T * dq); // gradient of the BN output
  const dSub = g.subKeys ?? sc.f32(2 * n * (dk / 2));
  kn.peerRouteBackward(dqn, dSub, dscores, s.q, p.subKeys, s.ids, { T, H, dk, n, k });
  const dqpre = sc.f32(T * dq);
  const dGamma = g.bnWeight ?? sc.f32(dq),
    dBeta = g.bnBias ?? sc.f32(dq);
  kn.batchnormBackward(dqpre, dGamma, dBeta, dqn, s.qpre, s.mean, s.variance, p.bnWeight, {
    rows: T,
    cols: dq,
    eps: cfg.bnEps,
    train: cfg.mode === 'train',
  });
  linearBackward(kn, dx, g.query, g.queryBias, dqpre, x, p.query, T, d, dq);
}
