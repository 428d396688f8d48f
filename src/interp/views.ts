// One unit site of one layer, right after the layer computed it, with its units exposed: the view every hook sees.
// Views are built over plain host arrays, so the float64 reference (model.ts) and the float32 WASM forward
// (wasm-forward.ts) hand the same hooks the same kind of object.
//
// Dimension legend:
//   T tokens, d model dim, F hidden neurons, E experts (SMoE), k top-k, N experts (PEER), H heads (PEER, Monet),
//   E_m experts per side of a Monet router, m moe_dim
//
// Why removing a unit is exact: the output `out` of a feed-forward layer enters the residual stream as x' = h + out,
// and every unit kind is LINEAR in its contribution to `out`:
//   dense/topk: out = down·h = Σ_n h[t,n]·down[:,n]        removing neuron n: out −= h[t,n]·down[:,n]
//                                                          steering: h[t,n] += δ ⇔ out += δ·down[:,n]
//   smoe:       out = Σ_s w_s·E_s(x)                         removing expert e: out −= w_e·E_e(x)
//   peer:       out = Σ_h Σ_r w_hr·σ(w_down[id]·x)·w_up[id]  removing expert id: subtract its terms
//   monet:      out = Σ_ij g_ij·E_ij(x)                      removing (i, j): out −= g_ij·E_ij(x) (a token's removed
//                                                          pairs together: monet-removal.ts)
//   hidden:     the residual stream after TopK, x'[t,n]      removing dimension n: x'[t,n] ← 0; steering: += δ
// so a hook subtracts (or adds) exactly those terms after the layer's own forward and nothing else changes. For
// Monet, zeroing g1[:,i] would remove the whole row of E_m experts (i, ·), not one composite expert.

import { act } from '../../reference/activations.ts';
import { compositeScore, monetExpertContribution, type MonetExperts } from '../../reference/monet-expert-view.ts';
import { removeMonetPairs, type RemovedPair } from './monet-removal.ts';
import type { UnitGroup } from './units.ts';

export interface UnitView {
  readonly group: UnitGroup;
  readonly layer: number;
  /**
   * True at the group's first layer. Scores are read there; the later layers of a Monet router group repeat the
   * same scores (removal and contributions still happen in every layer).
   */
  readonly first: boolean;
  readonly T: number;
  readonly d: number;
  /** The layer's FFN input u (T, d) at site 'ffn' (read-only); null at site 'hidden'. */
  readonly input: Float64Array | null;
  /** Calls visit(t, u, score) for every unit with a non-zero score at token t (tokens in order, units ascending). */
  visitScores(visit: (t: number, u: number, score: number) => void): void;
  /** out (T, d) −= the exact contribution of each unit in `remove` at this layer. */
  removeUnits(out: Float64Array, remove: ReadonlySet<number>): void;
  /** dst (d) += unit u's contribution at token t in this layer (what removeUnits would subtract). */
  addContribution(dst: Float64Array, t: number, u: number): void;
  /** out (T, d) += δ·(neuron n's output direction) at every token: neuron n raised by δ (neuron kinds only). */
  steerNeuron(out: Float64Array, n: number, delta: number): void;
}

export interface SiteInfo {
  group: UnitGroup;
  layer: number;
  T: number;
  d: number;
  /** The FFN input u (T, d) at site 'ffn'; null at site 'hidden'. */
  input: Float64Array | null;
}

const first = (s: SiteInfo) => s.group.layers[0] === s.layer;

function noSteer(s: SiteInfo): never {
  throw new Error(
    `inspect: steering adds δ to a neuron; the units of layer ${s.layer} are ${s.group.kind} experts, not ` +
      'neurons (use a dense or TopK model)',
  );
}

function checkNeuron(s: SiteInfo, n: number): void {
  if (!Number.isInteger(n) || n < 0 || n >= s.group.count)
    throw new Error(`inspect: neuron ${n} out of range [0, ${s.group.count}) in layer ${s.layer}`);
}

/** Neurons of an MLP: hidden activation h (T, F) feeding down (d, F). */
export function neuronView(s: SiteInfo, h: ArrayLike<number>, down: Float64Array): UnitView {
  const { T, d } = s;
  const F = s.group.count;
  return {
    ...s,
    first: first(s),
    visitScores(visit) {
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < F; n++) {
          const v = h[t * F + n];
          if (v !== 0) visit(t, n, v);
        }
      }
    },
    removeUnits(out, remove) {
      for (const n of remove) {
        for (let t = 0; t < T; t++) {
          const a = h[t * F + n];
          if (a === 0) continue;
          for (let o = 0; o < d; o++) out[t * d + o] -= a * down[o * F + n];
        }
      }
    },
    addContribution(dst, t, n) {
      const a = h[t * F + n];
      for (let o = 0; o < d; o++) dst[o] += a * down[o * F + n];
    },
    steerNeuron(out, n, delta) {
      checkNeuron(s, n);
      for (let t = 0; t < T; t++) for (let o = 0; o < d; o++) out[t * d + o] += delta * down[o * F + n];
    },
  };
}

/**
 * Residual-stream dimensions after a TopK map (topk_placement 'hidden'): `x` (T, d) is the stream itself, the array
 * the hook may change. Removing dimension n zeroes x[:, n]; steering adds δ to it.
 */
export function hiddenView(s: SiteInfo, x: Float64Array): UnitView {
  const { T, d } = s;
  return {
    ...s,
    first: first(s),
    visitScores(visit) {
      for (let t = 0; t < T; t++) {
        for (let n = 0; n < d; n++) {
          const v = x[t * d + n];
          if (v !== 0) visit(t, n, v);
        }
      }
    },
    removeUnits(out, remove) {
      for (const n of remove) for (let t = 0; t < T; t++) out[t * d + n] = 0;
    },
    addContribution(dst, t, n) {
      dst[n] += x[t * d + n];
    },
    steerNeuron(out, n, delta) {
      checkNeuron(s, n);
      for (let t = 0; t < T; t++) out[t * d + n] += delta;
    },
  };
}

/**
 * SMoE experts by routing slot: idx (T, k) selected experts, w (T, k) their gate weights, pairOut (T·k, d) the
 * output E_e(x_t) of the expert in slot (t, r).
 */
export function smoeView(
  s: SiteInfo,
  k: number,
  idx: ArrayLike<number>,
  w: ArrayLike<number>,
  pairOut: Float64Array,
): UnitView {
  const { T, d } = s;
  return {
    ...s,
    first: first(s),
    visitScores(visit) {
      for (let t = 0; t < T; t++) {
        // ascending expert id within a token, as the other views
        const slots = Array.from({ length: k }, (_, r) => r).sort((a, b) => idx[t * k + a] - idx[t * k + b]);
        for (const r of slots) visit(t, idx[t * k + r], w[t * k + r]);
      }
    },
    removeUnits(out, remove) {
      for (let t = 0; t < T; t++) {
        for (let r = 0; r < k; r++) {
          if (!remove.has(idx[t * k + r])) continue;
          const gate = w[t * k + r];
          for (let o = 0; o < d; o++) out[t * d + o] -= gate * pairOut[(t * k + r) * d + o];
        }
      }
    },
    addContribution(dst, t, e) {
      for (let r = 0; r < k; r++) {
        if (idx[t * k + r] !== e) continue;
        for (let o = 0; o < d; o++) dst[o] += w[t * k + r] * pairOut[(t * k + r) * d + o];
      }
    },
    steerNeuron: () => noSteer(s),
  };
}

/** PEER experts: ids, w, hpre (T, H, k) as the layer saved them, w_up (N, d), σ the expert activation. */
export function peerView(
  s: SiteInfo,
  H: number,
  k: number,
  activation: 'relu' | 'gelu',
  ids: ArrayLike<number>,
  w: ArrayLike<number>,
  hpre: ArrayLike<number>,
  wUp: Float64Array,
): UnitView {
  const { T, d } = s;
  const term = (dst: Float64Array, at: number, j: number, sign: number) => {
    const coef = sign * w[j] * act(activation, hpre[j]);
    const id = ids[j];
    for (let o = 0; o < d; o++) dst[at + o] += coef * wUp[id * d + o];
  };
  return {
    ...s,
    first: first(s),
    visitScores(visit) {
      // The same expert can be retrieved by several heads of one token: its score is the sum of its weights.
      const acc = new Map<number, number>();
      for (let t = 0; t < T; t++) {
        acc.clear();
        for (let j = t * H * k; j < (t + 1) * H * k; j++) acc.set(ids[j], (acc.get(ids[j]) ?? 0) + w[j]);
        for (const [u, sc] of [...acc.entries()].sort((a, b) => a[0] - b[0])) visit(t, u, sc);
      }
    },
    removeUnits(out, remove) {
      for (let t = 0; t < T; t++)
        for (let j = t * H * k; j < (t + 1) * H * k; j++) if (remove.has(ids[j])) term(out, t * d, j, -1);
    },
    addContribution(dst, t, u) {
      for (let j = t * H * k; j < (t + 1) * H * k; j++) if (ids[j] === u) term(dst, 0, j, 1);
    },
    steerNeuron: () => noSteer(s),
  };
}

/** A Monet layer's view, which also lists a token's removed composite experts (the pairs removeUnits subtracts). */
export interface MonetUnitView extends UnitView {
  /** The pairs of `remove` that token t fires, with their composite scores (ids ascending). */
  removedPairs(t: number, remove: ReadonlySet<number>): RemovedPair[];
}

/**
 * Monet composite experts of one layer: the routing (g1, g2) (T, H, E) of the group's router, the layer's FFN input
 * u (T, d) and its expert weights.
 */
export function monetView(
  s: SiteInfo,
  g1: Float64Array,
  g2: Float64Array,
  u: Float64Array,
  experts: MonetExperts,
  m: number,
): MonetUnitView {
  const { T, d } = s;
  const E = s.group.sideExperts!;
  const H = g1.length / (T * E);
  const dims = { T, d, H, E, m };
  /**
   * Composite scores of token t, sparse: only pairs (i, j) with g1[h,i] > 0 and g2[h,j] > 0 for some head h can be
   * non-zero, and a router selects only a few experts per head, so this touches far fewer than E² pairs.
   */
  const scratch = new Float64Array(E * E); // (E·E) g_ij of one token
  const touched: number[] = [];
  const tokenScores = (t: number, visit: (id: number, score: number) => void) => {
    touched.length = 0;
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * E;
      for (let i = 0; i < E; i++) {
        const a = g1[o + i];
        if (a === 0) continue;
        for (let j = 0; j < E; j++) {
          const b = g2[o + j];
          if (b === 0) continue;
          const id = i * E + j;
          if (scratch[id] === 0) touched.push(id);
          scratch[id] += a * b;
        }
      }
    }
    touched.sort((x, y) => x - y);
    for (const id of touched) {
      visit(id, scratch[id]);
      scratch[id] = 0;
    }
  };
  const contrib = new Float64Array(d); // (d) g_ij·E_ij(u_t)
  const removedPairs = (t: number, remove: ReadonlySet<number>): RemovedPair[] => {
    const pairs: RemovedPair[] = [];
    tokenScores(t, (id, c) => {
      if (remove.has(id)) pairs.push({ i: Math.floor(id / E), j: id % E, c });
    });
    return pairs;
  };
  return {
    ...s,
    first: first(s),
    visitScores(visit) {
      for (let t = 0; t < T; t++) tokenScores(t, (id, sc) => visit(t, id, sc));
    },
    removedPairs,
    removeUnits(out, remove) {
      if (remove.size === 0) return;
      for (let t = 0; t < T; t++) removeMonetPairs(out, t * d, u, t * d, removedPairs(t, remove), experts, d, E, m);
    },
    addContribution(dst, t, id) {
      const i = Math.floor(id / E);
      const j = id % E;
      if (compositeScore(g1, g2, t, i, j, H, E) === 0) return;
      monetExpertContribution(contrib, u, g1, g2, t, i, j, experts, dims);
      for (let o = 0; o < d; o++) dst[o] += contrib[o];
    },
    steerNeuron: () => noSteer(s),
  };
}
