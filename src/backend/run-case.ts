// A CaseBackend built from any Device: fixture case → float32 device tensors → the src/layers/ forward/backward →
// TensorMap. The WASM, WebGPU and plain-JS backends all run fixtures through this one file, so they differ only in
// kernels.
//
// What a run does, for every kind (FIXTURES.md, src/backend/case.ts):
//   1. read and shape-check the config and the in./param./state. tensors (errors name the fixture and tensor),
//      convert them to float32 (indices to int32) and upload them;
//   2. forward; out.* (and idx.*, next.*) are read back;
//   3. unless forwardOnly: gradient buffers start at opts.gradInit (else zero), backward ADDS into them with the
//      objective's upstream gradients (in.dy, config.aux coefficients), and grad.* are read back.
// Results are float32 (F32; indices I32, masks U8, as the fixtures store them).

import type { CaseBackend, FixtureCase, RunOptions } from './case.ts';
import type { Device } from './device.ts';
import { Scope } from './device.ts';
import type { F32, I32 } from './kernels.ts';
import { numel, type Tensor, type TensorMap } from '../tensor.ts';
import { CaseInputs, cfgAux, cfgEnum, cfgInt, cfgNum, type Config } from '../../reference/common.ts';
import { monetSigma } from '../../reference/normal.ts';
import { parseDenseFfnConfig as parseDenseConfig } from '../../reference/dense-ffn.ts';
import { parseSmoeConfig } from '../../reference/smoe.ts';
import { denseFfnBackward, denseFfnForward } from '../layers/dense-ffn.ts';
import { topkBackward, topkFfnBackward, topkFfnForward, topkForward, type TopkFfnConfig } from '../layers/topk.ts';
import { smoeBackward, smoeForward } from '../layers/smoe.ts';
import { peerBackward, peerForward, type PeerConfig } from '../layers/peer.ts';
import {
  monetAuxBackward,
  monetAuxForward,
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterConfig,
} from '../layers/monet-router.ts';
import { monetHdBackward, monetHdForward } from '../layers/monet-hd.ts';
import { monetVdBackward, monetVdForward } from '../layers/monet-vd.ts';
import { runLmCase } from '../layers/lm.ts';

// ---------------------------------------------------------------------------------------------------------------
// Config parsing, shared with src/layers/lm.ts (same keys and defaults as the reference; NAMES.md). The dense FFN and
// SMoE use the reference's own parsers (the device layers' configs have the same fields); PEER and the Monet router
// have their own, as the device layers also take n = √N and sigma precomputed.

export { parseDenseConfig, parseSmoeConfig };
export function parsePeerConfig(c: Config, where: string): PeerConfig {
  const N = cfgInt(c, 'num_experts', where);
  const n = Math.round(Math.sqrt(N));
  if (n * n !== N)
    throw new Error(`${where}: config.num_experts: expected a perfect square (product keys), found ${N}`);
  const dk = cfgInt(c, 'key_dim', where, 2);
  if (dk % 2 !== 0) throw new Error(`${where}: config.key_dim: expected an even number (two halves), found ${dk}`);
  const k = cfgInt(c, 'top_k', where);
  if (k > n)
    throw new Error(
      `${where}: config.top_k: expected at most √num_experts = ${n} (top-k is taken on each key half), found ${k}`,
    );
  return {
    d: cfgInt(c, 'hidden_size', where),
    N,
    n,
    H: cfgInt(c, 'heads', where),
    k,
    dk,
    activation: cfgEnum(c, 'activation', ['relu', 'gelu'] as const, where),
    mode: cfgEnum(c, 'mode', ['train', 'eval'] as const, where),
    bnEps: cfgNum(c, 'bn_eps', where, 1e-5),
    bnMomentum: cfgNum(c, 'bn_momentum', where, 0.1),
  };
}
export function parseRouterConfig(c: Config, where: string): MonetRouterConfig {
  const E = cfgInt(c, 'moe_experts', where, 2),
    topk = cfgInt(c, 'moe_topk', where);
  if (topk >= E)
    throw new Error(
      `${where}: config.moe_topk: expected less than moe_experts = ${E} (the threshold is Φ⁻¹(1 − topk/E)), found ${topk}`,
    );
  return {
    d: cfgInt(c, 'hidden_size', where),
    H: cfgInt(c, 'moe_heads', where),
    E,
    topk,
    mode: cfgEnum(c, 'mode', ['train', 'eval'] as const, where),
    bnEps: cfgNum(c, 'bn_eps', where, 1e-5),
    bnMomentum: cfgNum(c, 'bn_momentum', where, 0.1),
    sigma: monetSigma(topk, E),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Moving tensors between a case and a device.

function toF32(data: Float64Array): Float32Array {
  return Float32Array.from(data);
}

/** Builds device tensors from a case and collects what must be read back, under which name and shape. */
export class CaseIO {
  readonly inp: CaseInputs;
  private readonly reads: { name: string; shape: number[]; t: F32 | I32; as: 'F32' | 'I32' | 'U8' }[] = [];
  constructor(
    readonly sc: Scope,
    readonly c: FixtureCase,
    readonly opts: RunOptions | undefined,
  ) {
    this.inp = new CaseInputs(c);
  }
  get where(): string {
    return this.inp.where;
  }
  /** A real input/param/state tensor, shape-checked, uploaded as float32. */
  f32(name: string, shape: number[]): F32 {
    return this.sc.upload(toF32(this.inp.f64(name, shape)));
  }
  /** An integer input tensor (I32/I64), uploaded as int32. */
  i32(name: string, shape: number[]): I32 {
    return this.sc.upload(Int32Array.from(this.inp.i32(name, shape)));
  }
  /** A gradient buffer: opts.gradInit[name] when given, else zeros; read back as `name`. */
  grad(name: string, shape: number[]): F32 {
    const init = this.opts?.gradInit?.get(name);
    let t: F32;
    if (init) {
      if (numel(init.shape) !== numel(shape))
        throw new Error(`gradInit ${name}: expected shape [${shape}], found [${init.shape}]`);
      t = this.sc.upload(
        init.dtype === 'F32'
          ? Float32Array.from(init.data as Float32Array)
          : Float32Array.from(init.data as Float64Array),
      );
    } else {
      t = this.sc.f32(numel(shape));
    }
    this.out(name, shape, t);
    return t;
  }
  /** Read `t` back as output `name` with `shape` ('U8' for masks, 'I32' for indices). */
  out(name: string, shape: number[], t: F32 | I32, as: 'F32' | 'I32' | 'U8' = t.dtype === 'f32' ? 'F32' : 'I32'): void {
    this.reads.push({ name, shape, t, as });
  }
  /** Reads every registered output (in registration order). */
  async collect(): Promise<TensorMap> {
    const out: TensorMap = new Map();
    for (const r of this.reads) {
      let tensor: Tensor;
      if (r.t.dtype === 'f32') {
        tensor = { dtype: 'F32', shape: r.shape, data: await this.sc.dev.read(r.t as F32) };
      } else {
        const v = await this.sc.dev.read(r.t as I32);
        tensor =
          r.as === 'U8'
            ? { dtype: 'U8', shape: r.shape, data: Uint8Array.from(v) }
            : { dtype: 'I32', shape: r.shape, data: v };
      }
      if (numel(r.shape) !== tensor.data.length)
        tensor = { ...tensor, data: tensor.data.slice(0, numel(r.shape)) as never };
      out.set(r.name, tensor);
    }
    return out;
  }
}

/** A 1-element device tensor holding a scalar loss, read back as a 0-d tensor. */
function scalarOut(io: CaseIO, name: string): F32 {
  const t = io.sc.f32(1);
  io.out(name, [], t);
  return t;
}

/**
 * A layer's tensors by the layer's own keys: its parameters (`prefix` 'param.') or gradient buffers for them
 * ('grad.param.'), each named `prefix + names[key]` in the fixture and of shape `shapes[key]`.
 */
function layerTensors<K extends string>(
  io: CaseIO,
  prefix: 'param.' | 'grad.param.',
  names: Record<K, string>,
  shapes: Record<K, readonly number[]>,
): Record<K, F32> {
  const keys = Object.keys(names) as K[];
  const get = (name: string, shape: number[]) => (prefix === 'param.' ? io.f32(name, shape) : io.grad(name, shape));
  return Object.fromEntries(keys.map((key) => [key, get(`${prefix}${names[key]}`, [...shapes[key]])])) as Record<
    K,
    F32
  >;
}

// ---------------------------------------------------------------------------------------------------------------
// One runner per kind. Each reads the case, runs forward, and (unless forwardOnly) backward.

type Runner = (io: CaseIO, back: boolean) => void;

const RUNNERS: Record<string, Runner> = {
  'dense-ffn'(io, back) {
    const cfg = parseDenseConfig(io.c.config, io.where);
    const T = io.inp.shapeOf('in.x')[0];
    const { d, F } = cfg;
    const x = io.f32('in.x', [T, d]);
    const names = cfg.activation === 'swiglu' ? ['gate_proj', 'up_proj', 'down_proj'] : ['up_proj', 'down_proj'];
    const shapes: Record<string, number[]> = { gate_proj: [F, d], up_proj: [F, d], down_proj: [d, F] };
    const w = {
      gate: cfg.activation === 'swiglu' ? io.f32('param.gate_proj.weight', [F, d]) : null,
      up: io.f32('param.up_proj.weight', [F, d]),
      down: io.f32('param.down_proj.weight', [d, F]),
    };
    const y = io.sc.f32(T * d);
    io.out('out.y', [T, d], y);
    const saved = denseFfnForward(io.sc, y, x, w, cfg, T);
    if (!back) return;
    const dy = io.f32('in.dy', [T, d]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g: Record<string, F32> = {};
    for (const n of names) g[n] = io.grad(`grad.param.${n}.weight`, shapes[n]);
    denseFfnBackward(
      io.sc,
      dx,
      { gate: g.gate_proj ?? null, up: g.up_proj, down: g.down_proj },
      dy,
      x,
      w,
      saved,
      cfg,
      T,
    );
  },

  topk(io, back) {
    const k = cfgInt(io.c.config, 'k', io.where);
    const alpha = cfgNum(io.c.config, 'alpha', io.where);
    cfgEnum(io.c.config, 'activation', ['relu'] as const, io.where, 'relu');
    const [T, F] = io.inp.shapeOf('in.x');
    const x = io.f32('in.x', [T, F]);
    const y = io.sc.f32(T * F);
    io.out('out.y', [T, F], y);
    const saved = topkForward(io.sc, y, x, { k, alpha }, T, F);
    io.out('idx.mask', [T, F], saved.mask, 'U8');
    if (!back) return;
    const dy = io.f32('in.dy', [T, F]);
    topkBackward(io.sc, io.grad('grad.in.x', [T, F]), dy, saved, { k, alpha }, T, F);
  },

  'topk-ffn'(io, back) {
    const c = io.c.config;
    const cfg: TopkFfnConfig = {
      d: cfgInt(c, 'hidden_size', io.where),
      F: cfgInt(c, 'intermediate_size', io.where),
      k: cfgInt(c, 'k', io.where),
      alpha: cfgNum(c, 'alpha', io.where),
    };
    const { d, F } = cfg;
    const T = io.inp.shapeOf('in.x')[0];
    const x = io.f32('in.x', [T, d]);
    const w = { up: io.f32('param.up_proj.weight', [F, d]), down: io.f32('param.down_proj.weight', [d, F]) };
    const y = io.sc.f32(T * d);
    io.out('out.y', [T, d], y);
    const saved = topkFfnForward(io.sc, y, x, w, cfg, T);
    io.out('idx.mask', [T, F], saved.act.mask, 'U8');
    if (!back) return;
    const dy = io.f32('in.dy', [T, d]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g = {
      up: io.grad('grad.param.up_proj.weight', [F, d]),
      down: io.grad('grad.param.down_proj.weight', [d, F]),
    };
    topkFfnBackward(io.sc, dx, g, dy, x, w, saved, cfg, T);
  },

  smoe(io, back) {
    const cfg = parseSmoeConfig(io.c.config, io.where);
    const aux = cfgAux(io.c.config, ['balance', 'z'], io.where);
    const { d, F, E, k } = cfg;
    const T = io.inp.shapeOf('in.x')[0];
    const x = io.f32('in.x', [T, d]);
    const swiglu = cfg.activation === 'swiglu';
    const roles = swiglu ? (['w1', 'w2', 'w3'] as const) : (['w1', 'w2'] as const);
    const shape = (r: string): number[] => (r === 'w2' ? [d, F] : [F, d]);
    const stacked = (r: string): F32 => {
      // Mixtral stores one tensor per expert; the grouped kernels want them stacked (E, ·, ·).
      const per = numel(shape(r));
      const buf = new Float32Array(E * per);
      for (let e = 0; e < E; e++) buf.set(toF32(io.inp.f64(`param.experts.${e}.${r}.weight`, shape(r))), e * per);
      return io.sc.upload(buf);
    };
    const w = {
      gate: io.f32('param.gate.weight', [E, d]),
      w1: stacked('w1'),
      w2: stacked('w2'),
      w3: swiglu ? stacked('w3') : null,
    };
    const y = io.sc.f32(T * d);
    io.out('out.y', [T, d], y);
    const lossB = scalarOut(io, 'out.loss_balance'),
      lossZ = scalarOut(io, 'out.loss_z');
    const saved = smoeForward(io.sc, y, { balance: lossB, z: lossZ }, x, w, cfg, T);
    io.out('idx.topk', [T, k], saved.idx, 'I32');
    if (!back) return;
    const dy = io.f32('in.dy', [T, d]);
    const dx = io.grad('grad.in.x', [T, d]);
    const gGate = io.grad('grad.param.gate.weight', [E, d]);
    // Stacked gradient buffers, filled from gradInit per expert, read back per expert through views.
    const gs: Record<string, F32> = {};
    for (const r of roles) {
      const per = numel(shape(r));
      const buf = new Float32Array(E * per);
      for (let e = 0; e < E; e++) {
        const init = io.opts?.gradInit?.get(`grad.param.experts.${e}.${r}.weight`);
        if (init)
          buf.set(init.dtype === 'F32' ? (init.data as Float32Array) : toF32(init.data as Float64Array), e * per);
      }
      gs[r] = io.sc.upload(buf);
    }
    smoeBackward(
      io.sc,
      dx,
      { gate: gGate, w1: gs.w1, w2: gs.w2, w3: gs.w3 ?? null },
      dy,
      x,
      w,
      saved,
      cfg,
      T,
      aux.balance,
      aux.z,
    );
    for (const r of roles) {
      const per = numel(shape(r));
      for (let e = 0; e < E; e++) {
        const part = io.sc.f32(per);
        io.sc.dev.kernels.copyBlock(part, gs[r], {
          rows: 1,
          cols: per,
          dstLd: per,
          srcLd: per,
          dstOffset: 0,
          srcOffset: e * per,
          accumulate: false,
        });
        io.out(`grad.param.experts.${e}.${r}.weight`, shape(r), part);
      }
    }
  },

  peer(io, back) {
    const cfg = parsePeerConfig(io.c.config, io.where);
    const { d, N, n, H, k, dk } = cfg;
    const dq = H * dk;
    const T = io.inp.shapeOf('in.x')[0];
    const x = io.f32('in.x', [T, d]);
    const shapes = {
      query: [dq, d],
      queryBias: [dq],
      bnWeight: [dq],
      bnBias: [dq],
      subKeys: [2, n, dk / 2],
      wDown: [N, d],
      wUp: [N, d],
    } as const;
    const names = {
      query: 'query.weight',
      queryBias: 'query.bias',
      bnWeight: 'query_bn.weight',
      bnBias: 'query_bn.bias',
      subKeys: 'sub_keys',
      wDown: 'w_down',
      wUp: 'w_up',
    } as const;
    const p = layerTensors(io, 'param.', names, shapes);
    const state = {
      runningMean: io.f32('state.query_bn.running_mean', [dq]),
      runningVar: io.f32('state.query_bn.running_var', [dq]),
    };
    const y = io.sc.f32(T * d);
    io.out('out.y', [T, d], y);
    const saved = peerForward(io.sc, y, x, p, state, cfg, T);
    io.out('idx.experts', [T, H, k], saved.ids, 'I32');
    if (cfg.mode === 'train') {
      io.out('next.query_bn.running_mean', [dq], state.runningMean);
      io.out('next.query_bn.running_var', [dq], state.runningVar);
    }
    if (!back) return;
    const dy = io.f32('in.dy', [T, d]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g = layerTensors(io, 'grad.param.', names, shapes);
    peerBackward(io.sc, dx, g, dy, x, p, saved, cfg, T);
  },

  'monet-router'(io, back) {
    const cfg = parseRouterConfig(io.c.config, io.where);
    const T = io.inp.shapeOf('in.x')[0];
    const { d, H, E } = cfg;
    const x = io.f32('in.x', [T, d]);
    const r = router(io, '', cfg, T, x);
    if (!back) return;
    const dg1 = io.f32('in.dg1', [T, H, E]),
      dg2 = io.f32('in.dg2', [T, H, E]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g = { w1: io.grad('grad.param.w1.weight', [H * E, d]), w2: io.grad('grad.param.w2.weight', [H * E, d]) };
    monetRouterBackward(io.sc, dx, g, dg1, dg2, x, r.p, r.saved, cfg, T);
  },

  'monet-hd'(io, back) {
    monetMoe(io, back, 'horizontal');
  },
  'monet-vd'(io, back) {
    monetMoe(io, back, 'vertical');
  },

  lm() {
    throw new Error('lm cases run through runLmCase'); // dispatched before this table (they need async reads)
  },
};

/** Router forward for the router/hd/vd kinds: params under `<prefix>w1.weight`, state under `state.<prefix>norm1.*`. */
function router(io: CaseIO, prefix: string, cfg: MonetRouterConfig, T: number, x: F32) {
  const { d, H, E } = cfg;
  const p = { w1: io.f32(`param.${prefix}w1.weight`, [H * E, d]), w2: io.f32(`param.${prefix}w2.weight`, [H * E, d]) };
  const st = (s: string) => io.f32(`state.${prefix}${s}`, [H]);
  const state = {
    mean1: st('norm1.running_mean'),
    var1: st('norm1.running_var'),
    mean2: st('norm2.running_mean'),
    var2: st('norm2.running_var'),
  };
  const saved = monetRouterForward(io.sc, x, p, state, cfg, T);
  io.out('out.g1', [T, H, E], saved.g1);
  io.out('out.g2', [T, H, E], saved.g2);
  io.out('idx.mask1', [T, H, E], saved.mask1, 'U8');
  io.out('idx.mask2', [T, H, E], saved.mask2, 'U8');
  if (cfg.mode === 'train') {
    io.out(`next.${prefix}norm1.running_mean`, [H], state.mean1);
    io.out(`next.${prefix}norm1.running_var`, [H], state.var1);
    io.out(`next.${prefix}norm2.running_mean`, [H], state.mean2);
    io.out(`next.${prefix}norm2.running_var`, [H], state.var2);
  }
  return { p, saved };
}

function monetMoe(io: CaseIO, back: boolean, decompose: 'horizontal' | 'vertical'): void {
  const c = io.c.config;
  const cfg = parseRouterConfig(c, io.where);
  const aux = cfgAux(c, ['unif', 'amb'], io.where);
  const m = cfgInt(c, 'moe_dim', io.where);
  if (decompose === 'vertical' && m % 2 !== 0)
    throw new Error(
      `${io.where}: config.moe_dim: expected an even number (Monet-VD splits each expert in halves), found ${m}`,
    );
  if (decompose === 'vertical' && cfg.d % 2 !== 0)
    throw new Error(
      `${io.where}: config.hidden_size: expected an even number (Monet-VD splits the output in halves), found ${cfg.d}`,
    );
  cfgEnum(c, 'hidden_act', ['relu2'] as const, io.where, 'relu2');
  const unifEps = cfgNum(c, 'unif_eps', io.where, 1e-10);
  const T = io.inp.shapeOf('in.x')[0];
  const { d, H, E } = cfg;
  const dims = { T, d, H, E, m };
  const x = io.f32('in.x', [T, d]);
  const r = router(io, 'router.', cfg, T, x);
  const unif = scalarOut(io, 'out.loss_unif'),
    amb = scalarOut(io, 'out.loss_amb');
  monetAuxForward(io.sc, unif, amb, r.saved, H, E, T, unifEps);
  const y = io.sc.f32(T * d);
  io.out('out.y', [T, d], y);
  const dg1 = io.sc.f32(T * H * E),
    dg2 = io.sc.f32(T * H * E);
  // Backward's inputs and gradient buffers (registered in this order: dx, the expert layer's, the router's)
  const backBuffers = <K extends string>(names: Record<K, string>, shapes: Record<K, readonly number[]>) => ({
    dy: io.f32('in.dy', [T, d]),
    dx: io.grad('grad.in.x', [T, d]),
    g: layerTensors(io, 'grad.param.', names, shapes),
    rg: {
      w1: io.grad('grad.param.router.w1.weight', [H * E, d]),
      w2: io.grad('grad.param.router.w2.weight', [H * E, d]),
    },
  });
  // After the expert layer's backward has filled dg1, dg2 (and its part of dx): the aux losses' and the router's
  const routerBackward = (dx: F32, rg: { w1: F32; w2: F32 }) => {
    monetAuxBackward(io.sc, dg1, dg2, r.saved, H, E, T, unifEps, aux.unif, aux.amb);
    monetRouterBackward(io.sc, dx, rg, dg1, dg2, x, r.p, r.saved, cfg, T);
  };
  if (decompose === 'horizontal') {
    const sh = { u: [E * m, d], ub: [E * m], v: [d, E * m], b: [E, d] } as const;
    const nm = { u: 'moe.u.weight', ub: 'moe.u.bias', v: 'moe.v.weight', b: 'moe.b' } as const;
    const p = layerTensors(io, 'param.', nm, sh);
    const saved = monetHdForward(io.sc, y, x, r.saved.g1, r.saved.g2, p, dims);
    if (!back) return;
    const { dy, dx, g, rg } = backBuffers(nm, sh);
    monetHdBackward(io.sc, dx, g, dg1, dg2, dy, x, r.saved.g1, r.saved.g2, p, saved, dims);
    routerBackward(dx, rg);
  } else {
    const Em = (E * m) / 2,
      dh = d / 2;
    const sh = {
      u1: [Em, d],
      u1b: [Em],
      u2: [Em, d],
      u2b: [Em],
      v11: [dh, Em],
      v12: [dh, Em],
      v21: [dh, Em],
      v22: [dh, Em],
      b1: [E, dh],
      b2: [E, dh],
    } as const;
    const nm = {
      u1: 'moe.u1.weight',
      u1b: 'moe.u1.bias',
      u2: 'moe.u2.weight',
      u2b: 'moe.u2.bias',
      v11: 'moe.v11.weight',
      v12: 'moe.v12.weight',
      v21: 'moe.v21.weight',
      v22: 'moe.v22.weight',
      b1: 'moe.b1',
      b2: 'moe.b2',
    } as const;
    const p = layerTensors(io, 'param.', nm, sh);
    const saved = monetVdForward(io.sc, y, x, r.saved.g1, r.saved.g2, p, dims);
    if (!back) return;
    const { dy, dx, g, rg } = backBuffers(nm, sh);
    monetVdBackward(io.sc, dx, g, dg1, dg2, dy, x, r.saved.g1, r.saved.g2, p, saved, dims);
    routerBackward(dx, rg);
  }
}

export const DEVICE_KINDS = [
  'dense-ffn',
  'smoe',
  'topk',
  'topk-ffn',
  'peer',
  'monet-router',
  'monet-hd',
  'monet-vd',
  'lm',
] as const;

/** Runs a fixture case on a device and returns the produced out./grad./idx./next. tensors. */
export async function runCaseOnDevice(dev: Device, c: FixtureCase, opts?: RunOptions): Promise<TensorMap> {
  const sc = new Scope(dev);
  try {
    const io = new CaseIO(sc, c, opts);
    if (c.kind === 'lm') return await runLmCase(io, !opts?.forwardOnly);
    const run = RUNNERS[c.kind];
    if (!run)
      throw new Error(
        `${io.where}: kind '${c.kind}' is not supported on ${dev.name} (supported: ${DEVICE_KINDS.join(', ')})`,
      );
    run(io, !opts?.forwardOnly);
    return await io.collect();
  } finally {
    sc.release();
  }
}

/** The CaseBackend of a device: what `monet check --backend <name>` and the fixture tests call. */
export function deviceCaseBackend(dev: Device, name = dev.name): CaseBackend {
  return {
    name,
    supports: (kind) => (DEVICE_KINDS as readonly string[]).includes(kind),
    run: (c, opts) => runCaseOnDevice(dev, c, opts),
    dispose: () => dev.dispose(),
  };
}
