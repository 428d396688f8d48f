// PEER: Parameter Efficient Expert Retrieval (docs/spec.md §2.2, backward §2.5, pitfalls §2.6), float64.
//
// Dimension legend:
//   T  tokens               d  model dim             N  experts (a perfect square)   K = √N sub-keys per side
//   H  heads                k  experts per head (top_k; also the per-half top-k)   dk  key_dim (even), dk/2 per half
//   dq = H·dk query features
//
// Parameters (names as in the paper's Alg. 1 and the PKM reference):
//   query.weight (dq, d), query.bias (dq)           the query network, one Linear for all heads
//   query_bn.weight, query_bn.bias (dq)             BatchNorm1d(dq) with affine; state query_bn.running_mean/var (dq)
//   sub_keys (2, K, dk/2)                           product-key halves C = sub_keys[0], C' = sub_keys[1], SHARED by
//                                                   all heads (as in the paper; PKM and lucidrains use per-head keys)
//   w_down (N, d), w_up (N, d)                      singleton experts: e_n(x) = σ(w_down[n]·x)·w_up[n]
//
// Forward, per token t and head h:
//   q      = BN(Wq x + bq)[h·dk : (h+1)·dk];  q1 = q[:dk/2], q2 = q[dk/2:]
//   s1[a]  = q1·C[a],  s2[b] = q2·C'[b]                       (K each; raw dot products, BN sets the scale)
//   A = top-k of s1,  B = top-k of s2                          (k each)
//   candidates (a, b) ∈ A×B with score s1[a] + s2[b], id a·K + b   (k² of them)
//   ids, sc = top-k of the candidates                           (exact: the best k of all N keys are among them)
//   w      = softmax(sc)                                        (over this head's k experts only)
//   y_t   += Σ_r w[r]·σ(w_down[ids[r]]·x)·w_up[ids[r]]          (heads are summed, not averaged)
// Ties at all three top-k stages go to the LOWER index (stages 1–2: sub-key index; stage 3: expert id), so that the
// selected ids (idx.experts, listed in descending score) compare exactly across implementations.
//
// Backward: the three selections are piecewise constant (no gradient). Gradient reaches the k selected scores (via
// the softmax), the selected sub-key rows, the query (via BN and the Linear), and the selected expert rows, each
// by SCATTER-ADD: one expert or sub-key row can be chosen by several tokens and by several heads of one token.

import { batchnormBackward, batchnormForward, type BatchNormMode, type BatchNormSaved } from './batchnorm.ts';
import { linearBackward, linearForward } from './linear.ts';
import { act, actGrad } from './activations.ts';

export type PeerActivation = 'relu' | 'gelu';

export interface PeerDims {
  T: number;
  d: number;
  N: number;
  H: number;
  k: number;
  dk: number;
}

export interface PeerOptions {
  activation: PeerActivation;
  mode: BatchNormMode;
  bnEps: number; // 1e-5
  bnMomentum: number; // 0.1
}

/** The layer's hyperparameters (config keys: hidden_size, num_experts, heads, top_k, key_dim, activation, mode,
 * bn_eps, bn_momentum); src/kinds/peer.ts reads and checks them. */
export interface PeerConfig extends Omit<PeerDims, 'T'>, PeerOptions {}

/** The dims of a forward over T tokens. */
export function peerDims(c: PeerConfig, T: number): PeerDims {
  return { T, d: c.d, N: c.N, H: c.H, k: c.k, dk: c.dk };
}

export type PeerParams = Record<
  'query.weight' | 'query.bias' | 'query_bn.weight' | 'query_bn.bias' | 'sub_keys' | 'w_down' | 'w_up',
  Float64Array
>;
export type PeerState = Record<'query_bn.running_mean' | 'query_bn.running_var', Float64Array>;

/** What forward saves for backward. */
export interface PeerSaved {
  qpre: Float64Array; // (T, dq) Wq x + bq (the BN input)
  q: Float64Array; // (T, dq) BN output: the queries
  bn: BatchNormSaved;
  ids: Int32Array; // (T, H, k) selected expert ids, descending score (the idx.experts fixture output)
  ia: Int32Array; // (T, H, k) the first-half sub-key index a of each selected expert (id = a·K + b)
  ib: Int32Array; // (T, H, k) the second-half sub-key index b
  w: Float64Array; // (T, H, k) softmax weights
  hpre: Float64Array; // (T, H, k) w_down[id]·x, the expert pre-activation
}

/**
 * Indices of the k largest of scores[0..n), in descending score order, ties to the lower index.
 * `key(i)` gives the index used for tie-breaking and reporting (identity for sub-keys; the expert id for candidates).
 * (Naive on purpose: sort all n, keep the first k.)
 */
export function peerTopk(scores: Float64Array, n: number, k: number, key: (i: number) => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((x, y) => scores[y] - scores[x] || key(x) - key(y));
  return order.slice(0, k);
}

/** The √N sub-keys per half: N = K² (src/kinds/peer.ts refuses any other N). */
export function peerSubKeys(N: number): number {
  return Math.round(Math.sqrt(N));
}

/**
 * Scores of every sub-key of both halves for one (token, head): s1[a] = q1·C[a], s2[b] = q2·C'[b] (raw dot products;
 * the query BatchNorm sets their scale).
 */
export function peerSubKeyScores(
  s1: Float64Array, // (K) out
  s2: Float64Array, // (K) out
  q: Float64Array, // (T, H·dk) the queries
  q1: number, // offset of this (t, h)'s first half in q; the second half starts at q1 + dk/2
  C: Float64Array, // (2, K, dk/2) sub_keys
  K: number,
  half: number, // dk/2
): void {
  for (let a = 0; a < K; a++) {
    let v1 = 0;
    let v2 = 0;
    for (let c = 0; c < half; c++) {
      v1 += q[q1 + c] * C[a * half + c];
      v2 += q[q1 + half + c] * C[(K + a) * half + c];
    }
    s1[a] = v1;
    s2[a] = v2;
  }
}

export function peerForward(
  out: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: PeerParams,
  state: PeerState,
  next: PeerState | null, // receives the updated running stats in train mode
  dims: PeerDims,
  opts: PeerOptions,
): PeerSaved {
  const { T, d, N, H, k, dk } = dims;
  const K = peerSubKeys(N);
  const dq = H * dk;
  const half = dk / 2; // dk is even and k ≤ K (src/kinds/peer.ts)
  const C = p.sub_keys; // (2, K, dk/2)
  const Wd = p.w_down; // (N, d)
  const Wu = p.w_up; // (N, d)

  // queries: q = BN(Wq x + bq), one BN channel per query feature, statistics over the T tokens
  const qpre = new Float64Array(T * dq); // (T, dq)
  linearForward(qpre, x, p['query.weight'], p['query.bias'], T, d, dq);
  const q = new Float64Array(T * dq); // (T, dq)
  const bn = batchnormForward(
    q,
    qpre,
    p['query_bn.weight'],
    p['query_bn.bias'],
    state['query_bn.running_mean'],
    state['query_bn.running_var'],
    next ? next['query_bn.running_mean'] : null,
    next ? next['query_bn.running_var'] : null,
    { O: T, C: dq, I: 1 },
    { mode: opts.mode, eps: opts.bnEps, momentum: opts.bnMomentum },
  );

  const ids = new Int32Array(T * H * k); // (T, H, k)
  const ia = new Int32Array(T * H * k); // (T, H, k)
  const ib = new Int32Array(T * H * k); // (T, H, k)
  const w = new Float64Array(T * H * k); // (T, H, k)
  const hpre = new Float64Array(T * H * k); // (T, H, k)
  const s1 = new Float64Array(K); // (K) first-half scores of one (t, h)
  const s2 = new Float64Array(K); // (K)
  const cs = new Float64Array(k * k); // (k·k) candidate scores
  const cid = new Int32Array(k * k); // (k·k) candidate expert ids
  out.fill(0, 0, T * d);
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * d, (t + 1) * d); // (d)
    for (let h = 0; h < H; h++) {
      const q1 = t * dq + h * dk; // offset of q1 in q; q2 starts at q1 + dk/2
      // stage 1–2: score every sub-key of each half, keep the top k of each
      peerSubKeyScores(s1, s2, q, q1, C, K, half);
      const A = peerTopk(s1, K, k, (i) => i); // (k) first-half sub-key indices, descending score
      const B = peerTopk(s2, K, k, (i) => i); // (k)
      // stage 3: the k² sums, ranked by score then by expert id
      for (let x1 = 0; x1 < k; x1++) {
        for (let x2 = 0; x2 < k; x2++) {
          cs[x1 * k + x2] = s1[A[x1]] + s2[B[x2]];
          cid[x1 * k + x2] = A[x1] * K + B[x2];
        }
      }
      const sel = peerTopk(cs, k * k, k, (i) => cid[i]); // (k) candidate slots, descending score
      // softmax over this head's k selected scores (the first of `sel` is the max)
      const base = (t * H + h) * k; // offset of (t, h) in the (T, H, k) buffers
      let sum = 0;
      for (let r = 0; r < k; r++) {
        const c = sel[r];
        ids[base + r] = cid[c];
        ia[base + r] = A[Math.floor(c / k)];
        ib[base + r] = B[c % k];
        w[base + r] = Math.exp(cs[c] - cs[sel[0]]);
        sum += w[base + r];
      }
      for (let r = 0; r < k; r++) w[base + r] /= sum;
      // experts: y_t += w[r]·σ(w_down[id]·x)·w_up[id]
      for (let r = 0; r < k; r++) {
        const id = ids[base + r];
        let hp = 0;
        for (let c = 0; c < d; c++) hp += Wd[id * d + c] * xt[c];
        hpre[base + r] = hp;
        const coef = w[base + r] * act(opts.activation, hp);
        for (let c = 0; c < d; c++) out[t * d + c] += coef * Wu[id * d + c];
      }
    }
  }
  return { qpre, q, bn, ids, ia, ib, w, hpre };
}

/** Backward (accumulates into dx and grads). */
export function peerBackward(
  dx: Float64Array, // (T, d)
  grads: PeerParams,
  dout: Float64Array, // (T, d)
  x: Float64Array, // (T, d)
  p: PeerParams,
  s: PeerSaved,
  dims: PeerDims,
  opts: PeerOptions,
): void {
  const { T, d, N, H, k, dk } = dims;
  const K = peerSubKeys(N);
  const dq = H * dk;
  const half = dk / 2;
  const C = p.sub_keys;
  const dC = grads.sub_keys;
  const Wd = p.w_down;
  const Wu = p.w_up;
  const dWd = grads.w_down;
  const dWu = grads.w_up;
  const dqv = new Float64Array(T * dq); // (T, dq) gradient of the BN output q
  const dw = new Float64Array(k); // (k) gradient of one head's softmax weights
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * d, (t + 1) * d);
    const dout_t = dout.subarray(t * d, (t + 1) * d);
    for (let h = 0; h < H; h++) {
      const base = (t * H + h) * k;
      // experts: out += w·σ(hpre)·w_up[id]
      for (let r = 0; r < k; r++) {
        const id = s.ids[base + r];
        const hp = s.hpre[base + r];
        const hv = act(opts.activation, hp);
        const wr = s.w[base + r];
        let dov = 0; // dout·w_up[id]
        for (let c = 0; c < d; c++) {
          dov += dout_t[c] * Wu[id * d + c];
          dWu[id * d + c] += wr * hv * dout_t[c]; // scatter-add
        }
        dw[r] = dov * hv;
        const dhp = dov * wr * actGrad(opts.activation, hp);
        if (dhp !== 0) {
          for (let c = 0; c < d; c++) {
            dWd[id * d + c] += dhp * xt[c]; // scatter-add
            dx[t * d + c] += dhp * Wd[id * d + c];
          }
        }
      }
      // softmax over the k scores: dsc = w ⊙ (dw − Σ_r w·dw)
      let dot = 0;
      for (let r = 0; r < k; r++) dot += s.w[base + r] * dw[r];
      // score = q1·C[a] + q2·C'[b]: dq1 += dsc·C[a], dC[a] += dsc·q1 (and the second half)
      const q1 = t * dq + h * dk;
      for (let r = 0; r < k; r++) {
        const dsc = s.w[base + r] * (dw[r] - dot);
        const a = s.ia[base + r];
        const b = s.ib[base + r];
        for (let c = 0; c < half; c++) {
          dqv[q1 + c] += dsc * C[a * half + c];
          dC[a * half + c] += dsc * s.q[q1 + c];
          dqv[q1 + half + c] += dsc * C[(K + b) * half + c];
          dC[(K + b) * half + c] += dsc * s.q[q1 + half + c];
        }
      }
    }
  }
  // query BatchNorm (train: through the batch statistics; eval: a fixed affine map), then the query Linear
  const dqpre = new Float64Array(T * dq); // (T, dq)
  batchnormBackward(dqpre, grads['query_bn.weight'], grads['query_bn.bias'], dqv, p['query_bn.weight'], s.bn, {
    O: T,
    C: dq,
    I: 1,
  });
  linearBackward(dx, grads['query.weight'], grads['query.bias'], dqpre, x, p['query.weight'], T, d, dq);
}
