// One training step (forward + backward, parameter gradients included) of each layer kind on any Device, built
// from the shared layer code in src/layers/. Used by bench/layers.ts (every kind on every backend at one size),
// bench/scaling.ts (Monet-HD/VD, SMoE and PEER as the number of experts N grows) and bench/wasm-layers.ts (every
// kind on the WASM kernels at a larger size, with where each layer's time goes).
//
// Dimension legend: T tokens, d model dim, F hidden (intermediate) dim, E experts per side (Monet: √N) or number
// of experts (SMoE), N experts, n = √N (PEER sub-keys per side), H heads, m expert dim, k top-k, dk PEER key dim.
//
// What a step does: allocate its temporaries in the Scope it is given, run forward, run backward into the
// parameter gradients (which ACCUMULATE: the benchmark does not zero them between steps, because zeroing is the
// optimiser's O(parameters) memset, not part of forward + backward; bench/scaling.ts times it separately).
// Parameters and gradients are allocated once, outside the step, so counting them counts the model.

import type { Device, Scope } from '../../src/backend/device.ts';
import type { F32 } from '../../src/backend/kernels.ts';
import { denseFfnBackward, denseFfnForward, type DenseFfnConfig } from '../../src/layers/dense-ffn.ts';
import { smoeBackward, smoeForward, type SmoeConfig, type SmoeGrads, type SmoeWeights } from '../../src/layers/smoe.ts';
import { topkFfnBackward, topkFfnForward, type TopkFfnConfig } from '../../src/layers/topk.ts';
import { peerBackward, peerForward, type PeerConfig } from '../../src/layers/peer.ts';
import {
  monetAuxBackward,
  monetAuxForward,
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterConfig,
} from '../../src/layers/monet-router.ts';
import { monetHdBackward, monetHdForward } from '../../src/layers/monet-hd.ts';
import { monetVdBackward, monetVdForward } from '../../src/layers/monet-vd.ts';
import { monetSigma } from '../../reference/normal.ts';

export type LayerKind = 'dense-ffn' | 'smoe' | 'topk-ffn' | 'peer' | 'monet-hd' | 'monet-vd';
export const LAYER_KINDS: readonly LayerKind[] = ['dense-ffn', 'smoe', 'topk-ffn', 'peer', 'monet-hd', 'monet-vd'];

/** A layer ready to step: its parameters (by the layer's weight names), their gradients, and the step itself. */
export interface BuiltLayer {
  kind: LayerKind;
  desc: string; // the size in words, for tables
  params: Record<string, F32>;
  grads: Record<string, F32>;
  /** Everything else allocated once (inputs, running statistics), freed by `dispose`. */
  other: F32[];
  step(sc: Scope): void;
  /** Forward multiply-adds ×2 per token of the layer's matrix products (dense projections; napkin math). */
  forwardFlopsPerToken: number;
  dispose(): void;
}

/** Layer hyper-parameters; every field has the meaning of the layer's config key (see docs/fixtures.md). */
export type LayerSpec =
  | { kind: 'dense-ffn'; T: number; d: number; F: number }
  | { kind: 'smoe'; T: number; d: number; E: number; k: number; F: number; activation: 'swiglu' | 'relu2' }
  | { kind: 'topk-ffn'; T: number; d: number; F: number; k: number }
  | { kind: 'peer'; T: number; d: number; n: number; H: number; k: number; dk: number }
  | { kind: 'monet-hd' | 'monet-vd'; T: number; d: number; E: number; H: number; m: number; topk: number };

// ----------------------------------------------------------------------------------------------- initialisation

let seed = 12345;
/** Uniform values in (−scale, scale) from a fixed linear congruential sequence (reproducible runs). */
export function rnd(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

/**
 * Tensors above this many elements are filled with a constant on the device instead of random host data: the
 * largest expert tables (SMoE and PEER at N = 128² … 512²) hold hundreds of millions of floats, and generating and
 * uploading them would dominate the run. Their values do not steer routing (the gates, keys and router weights
 * that do are always random), and dense float32 kernels take the same time whatever the values.
 */
const RANDOM_LIMIT = 1 << 22;

function param(dev: Device, n: number, scale: number): F32 {
  if (n <= RANDOM_LIMIT) return dev.upload(rnd(n, scale));
  const t = dev.alloc('f32', n);
  dev.kernels.fill(t, { n, value: scale / 2 });
  return t;
}

/** Allocates every gradient first and every parameter next, so an infeasible size fails before any slow fill. */
function allocate(
  dev: Device,
  shapes: Record<string, number>,
  scale: number,
): { p: Record<string, F32>; g: Record<string, F32> } {
  const g: Record<string, F32> = {};
  for (const [k, n] of Object.entries(shapes)) g[k] = dev.alloc('f32', n);
  const p: Record<string, F32> = {};
  for (const [k, n] of Object.entries(shapes)) p[k] = param(dev, n, scale);
  return { p, g };
}

function disposer(dev: Device, ...groups: (Record<string, F32> | F32[])[]): () => void {
  return () => {
    for (const g of groups) for (const t of Object.values(g)) dev.free(t);
  };
}

// ----------------------------------------------------------------------------------------------- the layers

/** Builds the layer `spec` on `dev`: parameters, gradients, inputs x and upstream gradient dy, and its step. */
export function buildLayer(dev: Device, spec: LayerSpec): BuiltLayer {
  const { T, d } = spec;
  const scale = 1 / Math.sqrt(d);
  switch (spec.kind) {
    case 'dense-ffn': {
      const { F } = spec;
      const { p, g } = allocate(dev, { gate: F * d, up: F * d, down: d * F }, scale);
      const x = dev.upload(rnd(T * d, 1)); // (T, d)
      const dy = dev.upload(rnd(T * d, 1)); // (T, d)
      const cfg: DenseFfnConfig = { d, F, activation: 'swiglu' };
      return {
        kind: spec.kind,
        desc: `SwiGLU, F=${F}`,
        params: p,
        grads: g,
        other: [x, dy],
        forwardFlopsPerToken: 2 * 3 * d * F,
        step: (sc) => {
          const y = sc.f32(T * d),
            dx = sc.f32(T * d);
          const s = denseFfnForward(sc, y, x, p as never, cfg, T);
          denseFfnBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T);
        },
        dispose: disposer(dev, p, g, [x, dy]),
      };
    }
    case 'smoe': {
      const { E, k, F, activation } = spec;
      const shapes: Record<string, number> = { gate: E * d, w1: E * F * d, w2: E * d * F };
      if (activation === 'swiglu') shapes.w3 = E * F * d;
      const { p, g } = allocate(dev, shapes, scale);
      // the layer reads w3 only for swiglu; it must be null (not absent) otherwise
      const pw: SmoeWeights = { gate: p.gate, w1: p.w1, w2: p.w2, w3: p.w3 ?? null };
      const gw: SmoeGrads = { gate: g.gate, w1: g.w1, w2: g.w2, w3: g.w3 ?? null };
      const x = dev.upload(rnd(T * d, 1));
      const dy = dev.upload(rnd(T * d, 1));
      const cfg: SmoeConfig = { d, F, E, k, activation };
      return {
        kind: spec.kind,
        desc: `E=${E}, k=${k}, F=${F}, ${activation}`,
        params: p,
        grads: g,
        other: [x, dy],
        forwardFlopsPerToken: 2 * E * d + 2 * k * (activation === 'swiglu' ? 3 : 2) * d * F,
        step: (sc) => {
          const y = sc.f32(T * d),
            dx = sc.f32(T * d),
            lb = sc.f32(1),
            lz = sc.f32(1);
          const s = smoeForward(sc, y, { balance: lb, z: lz }, x, pw, cfg, T);
          smoeBackward(sc, dx, gw, dy, x, pw, s, cfg, T, 0.01, 0.001);
        },
        dispose: disposer(dev, p, g, [x, dy]),
      };
    }
    case 'topk-ffn': {
      const { F, k } = spec;
      const { p, g } = allocate(dev, { up: F * d, down: d * F }, scale);
      const x = dev.upload(rnd(T * d, 1));
      const dy = dev.upload(rnd(T * d, 1));
      const cfg: TopkFfnConfig = { d, F, k, alpha: 0 };
      return {
        kind: spec.kind,
        desc: `F=${F}, k=${k}`,
        params: p,
        grads: g,
        other: [x, dy],
        forwardFlopsPerToken: 2 * 2 * d * F,
        step: (sc) => {
          const y = sc.f32(T * d),
            dx = sc.f32(T * d);
          const s = topkFfnForward(sc, y, x, p as never, cfg, T);
          topkFfnBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T);
        },
        dispose: disposer(dev, p, g, [x, dy]),
      };
    }
    case 'peer': {
      const { n, H, k, dk } = spec;
      const N = n * n,
        dq = H * dk;
      const { p, g } = allocate(
        dev,
        { query: dq * d, queryBias: dq, subKeys: 2 * n * (dk / 2), wDown: N * d, wUp: N * d },
        scale,
      );
      // BatchNorm's affine parameters start at the PyTorch defaults (weight 1, bias 0)
      dev.kernels.fill(p.queryBias, { n: dq, value: 0 });
      p.bnWeight = dev.upload(new Float32Array(dq).fill(1));
      p.bnBias = dev.alloc('f32', dq);
      g.bnWeight = dev.alloc('f32', dq);
      g.bnBias = dev.alloc('f32', dq);
      const state = { runningMean: dev.alloc('f32', dq), runningVar: dev.upload(new Float32Array(dq).fill(1)) };
      const x = dev.upload(rnd(T * d, 1));
      const dy = dev.upload(rnd(T * d, 1));
      const cfg: PeerConfig = { d, N, n, H, k, dk, activation: 'gelu', mode: 'train', bnEps: 1e-5, bnMomentum: 0.1 };
      return {
        kind: spec.kind,
        desc: `N=${n}², H=${H}, k=${k}, key_dim=${dk}`,
        params: p,
        grads: g,
        other: [x, dy, state.runningMean, state.runningVar],
        // query projection + sub-key scores (2·n·dk/2 per head) + H·k singleton experts (down and up rows)
        forwardFlopsPerToken: 2 * dq * d + 2 * H * n * dk + 2 * 2 * H * k * d,
        step: (sc) => {
          const y = sc.f32(T * d),
            dx = sc.f32(T * d);
          const s = peerForward(sc, y, x, p as never, state, cfg, T);
          peerBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T);
        },
        dispose: disposer(dev, p, g, [x, dy, state.runningMean, state.runningVar]),
      };
    }
    case 'monet-hd':
    case 'monet-vd': {
      const { E, H, m, topk } = spec;
      const rc: MonetRouterConfig = {
        d,
        H,
        E,
        topk,
        mode: 'train',
        bnEps: 1e-5,
        bnMomentum: 0.1,
        sigma: monetSigma(topk, E),
      };
      const Em = E * m,
        Eh = (E * m) / 2,
        dh = d / 2;
      const shapes: Record<string, number> =
        spec.kind === 'monet-hd'
          ? { u: Em * d, ub: Em, v: d * Em, b: E * d }
          : {
              u1: Eh * d,
              u1b: Eh,
              u2: Eh * d,
              u2b: Eh,
              v11: dh * Eh,
              v12: dh * Eh,
              v21: dh * Eh,
              v22: dh * Eh,
              b1: E * dh,
              b2: E * dh,
            };
      const moe = allocate(dev, shapes, scale);
      const r = allocate(dev, { w1: H * E * d, w2: H * E * d }, scale);
      const state = {
        mean1: dev.alloc('f32', H),
        var1: dev.upload(new Float32Array(H).fill(1)),
        mean2: dev.alloc('f32', H),
        var2: dev.upload(new Float32Array(H).fill(1)),
      };
      const x = dev.upload(rnd(T * d, 1));
      const dy = dev.upload(rnd(T * d, 1));
      const dims = { T, d, H, E, m };
      const params: Record<string, F32> = { 'router.w1': r.p.w1, 'router.w2': r.p.w2 };
      const grads: Record<string, F32> = { 'router.w1': r.g.w1, 'router.w2': r.g.w2 };
      for (const k of Object.keys(shapes)) {
        params[`moe.${k}`] = moe.p[k];
        grads[`moe.${k}`] = moe.g[k];
      }
      const other = [x, dy, state.mean1, state.var1, state.mean2, state.var2];
      return {
        kind: spec.kind,
        desc: `√N=${E}, H=${H}, m=${m}, topk=${topk}, router + aux losses included`,
        params,
        grads,
        other,
        // router logits 2·(H·E)·d, the dense projections u and v (E·m each way), the contractions O(H·E·m)
        forwardFlopsPerToken: 2 * 2 * H * E * d + 2 * 2 * Em * d + 2 * 2 * H * Em,
        step: (sc) => {
          const rs = monetRouterForward(sc, x, r.p as never, state, rc, T);
          const unif = sc.f32(1),
            amb = sc.f32(1);
          monetAuxForward(sc, unif, amb, rs, H, E, T, 1e-10);
          const y = sc.f32(T * d),
            dx = sc.f32(T * d),
            dg1 = sc.f32(T * H * E),
            dg2 = sc.f32(T * H * E);
          if (spec.kind === 'monet-hd') {
            const s = monetHdForward(sc, y, x, rs.g1, rs.g2, moe.p as never, dims);
            monetHdBackward(sc, dx, moe.g as never, dg1, dg2, dy, x, rs.g1, rs.g2, moe.p as never, s, dims);
          } else {
            const s = monetVdForward(sc, y, x, rs.g1, rs.g2, moe.p as never, dims);
            monetVdBackward(sc, dx, moe.g as never, dg1, dg2, dy, x, rs.g1, rs.g2, moe.p as never, s, dims);
          }
          monetAuxBackward(sc, dg1, dg2, rs, H, E, T, 1e-10, 1e-3, 1e-3);
          monetRouterBackward(sc, dx, r.g as never, dg1, dg2, x, r.p as never, rs, rc, T);
        },
        dispose: disposer(dev, params, grads, other),
      };
    }
  }
}

/** Number of parameters, counted from the allocated parameter tensors (not from a formula). */
export function countParams(l: BuiltLayer): number {
  return Object.values(l.params).reduce((s, t) => s + (t ? t.length : 0), 0);
}

/** Zeroes every gradient tensor (what an optimiser step does once per step): the O(parameters) part of training. */
export function zeroGrads(dev: Device, l: BuiltLayer): void {
  for (const t of Object.values(l.grads)) if (t) dev.kernels.fill(t, { n: t.length, value: 0 });
}
