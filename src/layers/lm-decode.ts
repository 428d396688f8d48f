// Generation with a KV cache: the forward of src/layers/lm.ts without the loss and without saving anything for a
// backward, run on new tokens only, with every layer's keys and values (after RoPE) kept on the device.
//
// Dimension legend (as lm.ts): d model dim, L layers, nH query heads, nKV key/value heads, hd head dim, V vocabulary;
// Tn new tokens, P = past + Tn positions seen so far, M the cache's capacity (≤ max_position_embeddings).
//
// Cache layout per layer: k, v (nKV, M, hd) — head-major, so head g's first P keys are one contiguous block.
// Three steps, all in eval mode (routers normalise with the BatchNorm running statistics, which makes every token's
// feed-forward independent of the others, so running tokens one at a time gives the same result as all at once):
//   prefill (past = 0, any Tn): exactly lmForward's layer on the prompt (the causal attention kernel), and k, v of
//     every prompt position go into the cache;
//   decode (Tn = 1, position p = past): q, k, v of the new token; RoPE at position p (the rope kernel over p + 1
//     positions, of which the last row is the new token); k, v appended; then per query head h, reading kv head
//     g = h / (nH/nKV):  s = q_h·K_g[0..P)ᵀ / √hd,  a = softmax(s),  out_h = a·V_g[0..P)  (matmul, softmaxRows);
//   a chunk (past > 0, Tn > 1: a long prompt in pieces, whose temporaries are then a piece's, not the prompt's):
//     RoPE at positions past..P−1 as above, k, v appended, then per query head the decode step's products with Tn
//     query rows and a causal mask (row r sees keys 0..past + r): only the chunk's Tn × P scores are computed, and
//     its temporaries do not grow with P.
// Logits are computed for the last position only.

import { Scope, type Device } from '../backend/device.ts';
import type { F32, I32 } from '../backend/kernels.ts';
import type { LmDims } from '../../reference/lm-ffn.ts';
import { lmAuxNames } from '../kinds/lm.ts';
import { embedRows, linearForward, type Weight } from './common.ts';
import { forwardCtx, weightOf, type LmModel } from './lm.ts';
import { auxProducers, newDeviceFfnPass, type DeviceFfnPass } from './lm-ffn.ts';

export interface KvCache {
  /** Capacity M in positions. */
  readonly size: number;
  /** Positions held (P after the last call). */
  length: number;
  k: F32[]; // per layer (nKV, M, hd)
  v: F32[];
}

export function newKvCache(dev: Device, m: LmModel, size: number): KvCache {
  const { L, nKV, hd, maxPos } = m.cfg;
  if (size > maxPos) throw new Error(`kv cache: ${size} positions exceed max_position_embeddings ${maxPos}`);
  const per = nKV * size * hd;
  return {
    size,
    length: 0,
    k: Array.from({ length: L }, () => dev.alloc('f32', per)),
    v: Array.from({ length: L }, () => dev.alloc('f32', per)),
  };
}

export function freeKvCache(dev: Device, c: KvCache): void {
  for (const t of [...c.k, ...c.v]) dev.free(t);
  c.k = [];
  c.v = [];
}

/** x (Tn, nKV·hd) rows → cache (nKV, M, hd) at positions [at, at + Tn). */
function store(sc: Scope, cache: F32, x: F32, Tn: number, at: number, nKV: number, hd: number, M: number): void {
  for (let g = 0; g < nKV; g++)
    sc.dev.kernels.copyBlock(cache, x, {
      rows: Tn,
      cols: hd,
      dstLd: hd,
      srcLd: nKV * hd,
      dstOffset: (g * M + at) * hd,
      srcOffset: g * hd,
      accumulate: false,
    });
}

// Temporaries whose size would follow the position are allocated at the cache's capacity M instead: every call then
// asks the device for the same sizes, which its allocator reuses (sizes that grow token by token would not be).

/**
 * RoPE of Tn rows x (Tn, heads·hd) at positions p..p+Tn−1: the rope kernel over p + Tn positions, the rows placed
 * last.
 */
function ropeAt(
  sc: Scope,
  y: F32,
  x: F32,
  p: number,
  Tn: number,
  heads: number,
  hd: number,
  theta: number,
  M: number,
): void {
  const kn = sc.dev.kernels;
  const w = heads * hd;
  const wide = sc.f32(M * w); // (M, heads·hd): rows 0..p−1 are not used, rows p.. are x
  const out = sc.f32(M * w);
  const rows = { rows: 1, cols: Tn * w, dstLd: Tn * w, srcLd: Tn * w, accumulate: false };
  kn.copyBlock(wide, x, { ...rows, dstOffset: p * w, srcOffset: 0 });
  kn.rope(out, wide, { B: 1, S: p + Tn, heads, hd, theta });
  kn.copyBlock(y, out, { ...rows, dstOffset: 0, srcOffset: p * w });
}

/**
 * A chunk's attention (see the header): q (Tn, nH·hd) at positions P − Tn..P−1 against the cache's first P keys and
 * values, head by head: s = q_h·K_g[0..P)ᵀ (Tn, P), z = s/√hd + mask, a = softmax(z), out_h = a·V_g[0..P); `mask`
 * (Tn, P) is 0 where key j ≤ P − Tn + r may be seen by query row r and −1e30 after (causalMask); null for one
 * token (Tn = 1), which sees every cached key. att (Tn, nH·hd).
 * Temporaries are sized at the capacity M, so every chunk of Tn tokens asks for the same sizes whatever P is.
 */
function chunkAttention(
  sc: Scope,
  att: F32,
  q: F32,
  kc: F32,
  vc: F32,
  mask: F32 | null,
  m: LmModel,
  P: number,
  Tn: number,
  M: number,
): void {
  const kn = sc.dev.kernels;
  const { nH, nKV, hd } = m.cfg;
  const qw = nH * hd;
  const Kg = sc.f32(M * hd), // (P, hd) kv head g's keys, in a buffer of capacity M
    Vg = sc.f32(M * hd),
    qh = sc.f32(Tn * hd),
    s = sc.f32(Tn * M), // (Tn, P)
    z = sc.f32(Tn * M),
    a = sc.f32(Tn * M),
    oh = sc.f32(Tn * hd);
  const flat = (n: number, dstOffset: number, srcOffset: number) => ({
    rows: 1,
    cols: n,
    dstLd: n,
    srcLd: n,
    dstOffset,
    srcOffset,
    accumulate: false,
  });
  const headCols = (dstLd: number, srcLd: number, dstOffset: number, srcOffset: number) => ({
    rows: Tn,
    cols: hd,
    dstLd,
    srcLd,
    dstOffset,
    srcOffset,
    accumulate: false,
  });
  const group = nH / nKV;
  for (let h = 0; h < nH; h++) {
    const g = Math.floor(h / group);
    if (h % group === 0) {
      kn.copyBlock(Kg, kc, flat(P * hd, 0, g * M * hd));
      kn.copyBlock(Vg, vc, flat(P * hd, 0, g * M * hd));
    }
    kn.copyBlock(qh, q, headCols(hd, qw, 0, h * hd));
    kn.matmul(s, qh, Kg, { M: Tn, N: P, K: hd, transA: false, transB: true, accumulate: false });
    if (mask) kn.copyBlock(z, mask, flat(Tn * P, 0, 0));
    kn.axpby(z, s, { n: Tn * P, alpha: 1 / Math.sqrt(hd), beta: mask ? 1 : 0 });
    kn.softmaxRows(a, z, { rows: Tn, n: P });
    kn.matmul(oh, a, Vg, { M: Tn, N: hd, K: P, transA: false, transB: false, accumulate: false });
    kn.copyBlock(att, oh, headCols(qw, hd, h * hd, 0));
  }
}

/** A chunk's causal mask (Tn, P) for queries at positions P − Tn..P−1, in a buffer of Tn·M (see chunkAttention). */
function causalMask(sc: Scope, P: number, Tn: number, M: number): F32 {
  const host = new Float32Array(Tn * M);
  const past = P - Tn;
  for (let r = 0; r < Tn; r++) host.fill(-1e30, r * P + past + r + 1, (r + 1) * P);
  return sc.upload(host);
}

/**
 * Run `tokens` (Tn ids) after the cache's positions and return the logits (V) of the last one, allocated in `sc`
 * with every temporary (the caller reads the logits, then releases the scope): a prefill when the cache is empty,
 * a decode step for one token, a chunk otherwise. The cache's length grows by Tn.
 */
export function lmDecode(sc: Scope, m: LmModel, cache: KvCache, tokens: I32, Tn: number): F32 {
  const { cfg } = m;
  const { V, d, L, nH, nKV, hd, eps, theta } = cfg;
  const past = cache.length;
  if (past + Tn > cache.size) throw new Error(`lm decode: ${past + Tn} positions exceed the cache's ${cache.size}`);
  const kn = sc.dev.kernels;
  const P = past + Tn;
  const dims: LmDims = { B: 1, S: Tn, T: Tn };
  const param = (name: string): F32 => {
    const t = m.params.get(name);
    if (!t) throw new Error(`lm decode: missing parameter ${name}`);
    return t;
  };
  const W = (name: string): Weight => weightOf(m, name);
  const aux = new Map<string, F32>();
  for (const n of lmAuxNames(cfg)) aux.set(`loss_${n}`, sc.f32(1)); // the passes add their aux values; unused here
  const producers = auxProducers(cfg.ffn, L);
  const ffn = newDeviceFfnPass(cfg.ffn, L);
  const pass: DeviceFfnPass = ffn;
  const mask = past > 0 && Tn > 1 ? causalMask(sc, P, Tn, cache.size) : null;
  let h = sc.f32(Tn * d);
  embedRows(kn, h, W('model.embed_tokens.weight'), tokens, Tn, d);
  // Temporaries live per layer (a long prefill would otherwise hold every layer's at once), except that a Monet
  // router's g1, g2 serve its whole group: the scope of a router's layer is released when the next group starts.
  const groupSize = cfg.ffn.kind === 'monet' ? cfg.ffn.groups : 1;
  let routerScope: Scope | null = null;
  // the residual stream between layers: each layer's output lives in its own scope, released once the next layer
  // has read it (a 512-token prefill of 24 layers would otherwise hold 24 copies)
  let carry: Scope | null = null;
  const outer = sc;
  for (let i = 0; i < L; i++) {
    const sc = new Scope(outer.dev);
    if (i % groupSize === 0) {
      routerScope?.release();
      routerScope = sc;
    }
    const pre = `model.layers.${i}.`;
    const a = sc.f32(Tn * d);
    kn.rmsnorm(a, sc.f32(Tn), h, param(`${pre}input_layernorm.weight`), { rows: Tn, d, eps });
    const q0 = sc.f32(Tn * nH * hd),
      k0 = sc.f32(Tn * nKV * hd),
      v = sc.f32(Tn * nKV * hd);
    linearForward(kn, q0, a, W(`${pre}self_attn.q_proj.weight`), null, Tn, d, nH * hd);
    linearForward(kn, k0, a, W(`${pre}self_attn.k_proj.weight`), null, Tn, d, nKV * hd);
    linearForward(kn, v, a, W(`${pre}self_attn.v_proj.weight`), null, Tn, d, nKV * hd);
    const q = sc.f32(Tn * nH * hd),
      k = sc.f32(Tn * nKV * hd);
    const att = sc.f32(Tn * nH * hd);
    if (past === 0) {
      kn.rope(q, q0, { B: 1, S: Tn, heads: nH, hd, theta });
      kn.rope(k, k0, { B: 1, S: Tn, heads: nKV, hd, theta });
      kn.attention(att, sc.f32(nH * Tn * Tn), q, k, v, { B: 1, S: Tn, nH, nKV, hd });
      store(sc, cache.k[i], k, Tn, 0, nKV, hd, cache.size);
      store(sc, cache.v[i], v, Tn, 0, nKV, hd, cache.size);
    } else {
      ropeAt(sc, q, q0, past, Tn, nH, hd, theta, cache.size);
      ropeAt(sc, k, k0, past, Tn, nKV, hd, theta, cache.size);
      store(sc, cache.k[i], k, Tn, past, nKV, hd, cache.size);
      store(sc, cache.v[i], v, Tn, past, nKV, hd, cache.size);
      chunkAttention(sc, att, q, cache.k[i], cache.v[i], mask, m, P, Tn, cache.size);
    }
    const h1 = sc.f32(Tn * d);
    linearForward(kn, h1, att, W(`${pre}self_attn.o_proj.weight`), null, Tn, nH * hd, d);
    kn.axpby(h1, h, { n: Tn * d, alpha: 1, beta: 1 });
    const u = sc.f32(Tn * d);
    kn.rmsnorm(u, sc.f32(Tn), h1, param(`${pre}post_attention_layernorm.weight`), { rows: Tn, d, eps });
    const f = sc.f32(Tn * d);
    const ctx = forwardCtx(sc, m, dims, aux, producers, i);
    pass.forward(ctx, u, f);
    m.hooks?.afterFfn?.(sc, i, { u, out: f, ffn }); // (taps that only read: the routing of a Monet group)
    const next = new Scope(outer.dev);
    let h2 = next.f32(Tn * d);
    kn.copyBlock(h2, h1, { rows: 1, cols: Tn * d, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false });
    kn.axpby(h2, f, { n: Tn * d, alpha: 1, beta: 1 });
    if (pass.postForward) {
      const y = next.f32(Tn * d);
      if (pass.postForward(ctx, h2, y)) h2 = y;
    }
    carry?.release();
    carry = next;
    h = h2;
    if (sc !== routerScope) sc.release();
  }
  routerScope?.release();
  // the last position only: final norm and head
  const last = sc.f32(d);
  const lastRow = { rows: 1, cols: d, dstLd: d, srcLd: d, dstOffset: 0, srcOffset: (Tn - 1) * d, accumulate: false };
  kn.copyBlock(last, h, lastRow);
  carry?.release();
  const hn = sc.f32(d);
  kn.rmsnorm(hn, sc.f32(1), last, param('model.norm.weight'), { rows: 1, d, eps });
  const logits = sc.f32(V);
  linearForward(kn, logits, hn, W(cfg.tied ? 'model.embed_tokens.weight' : 'lm_head.weight'), null, 1, d, V);
  cache.length = P;
  return logits;
}
