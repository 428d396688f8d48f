// A CaseBackend built from any Device: fixture case → float32 device tensors → the src/layers/ forward/backward →
// TensorMap. The WASM, WebGPU and plain-JS backends all run fixtures through this one file, so they differ only in
// kernels.
//
// What a run does, for every kind (docs/fixtures.md, src/backend/case.ts):
//   1. read the config through the kind's declaration (src/kinds/) and shape-check the in./param./state. tensors
//      against it (errors name the fixture and tensor),
//      convert them to float32 (indices to int32) and upload them;
//   2. forward; out.* (and idx.*, next.*) are read back;
//   3. unless forwardOnly: gradient buffers start at opts.gradInit (else zero), backward ADDS into them with the
//      objective's upstream gradients (in.dy, config.aux coefficients), and grad.* are read back.
// Results are float32 (F32; indices I32, masks U8, as the fixtures store them).

import type { CaseBackend, FixtureCase, RunOptions } from './case.ts';
import type { Device } from './device.ts';
import { Scope } from './device.ts';
import type { F32, I32 } from './kernels.ts';
import { CaseInputs } from '../fixtures/case-inputs.ts';
import { FIXTURE_KINDS, KINDS, type FixtureKind } from '../kinds/index.ts';
import { lmParams, lmState } from '../kinds/lm.ts';
import { denseFfnTable } from '../kinds/dense-ffn.ts';
import { monetHdTable, monetRouterTable, monetVdTable } from '../kinds/monet.ts';
import { peerTable } from '../kinds/peer.ts';
import { smoeExpertTable } from '../kinds/smoe.ts';
import type { ParamSpec } from '../kinds/tensors.ts';
import { topkFfnTable } from '../kinds/topk.ts';
import { asF64, numel, type Tensor, type TensorMap } from '../tensor.ts';
import { denseFfnBackward, denseFfnForward } from '../layers/dense-ffn.ts';
import { lmBackward, lmForward, type LmModel } from '../layers/lm.ts';
import { topkBackward, topkFfnBackward, topkFfnForward, topkForward } from '../layers/topk.ts';
import { smoeBackward, smoeForward } from '../layers/smoe.ts';
import { devicePeerConfig, peerBackward, peerForward } from '../layers/peer.ts';
import {
  deviceRouterConfig,
  monetAuxBackward,
  monetAuxForward,
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterConfig,
} from '../layers/monet-router.ts';
import { monetHdBackward, monetHdForward } from '../layers/monet-hd.ts';
import { monetVdBackward, monetVdForward } from '../layers/monet-vd.ts';

// ---------------------------------------------------------------------------------------------------------------
// Moving tensors between a case and a device.

function toF32(data: ArrayLike<number>): Float32Array {
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
      t = this.sc.upload(toF32(asF64(init, `gradInit ${name}`)));
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

/** Tensors by role from a kind's parameter table: optional roles (null specs) are null. */
type Bound<T> = { [K in keyof T]: T[K] extends ParamSpec ? F32 : F32 | null };

/**
 * A layer's parameters (`prefix` 'param.') or gradient buffers for them ('grad.param.') by the device layer's roles,
 * each named and shaped as the kind's table says (`under` is the layer's own prefix in the case, e.g. `moe.`).
 */
function layerTensors<T extends Record<string, ParamSpec | null>>(
  io: CaseIO,
  prefix: 'param.' | 'grad.param.',
  table: T,
  under = '',
): Bound<T> {
  const get = (s: ParamSpec) => {
    const name = `${prefix}${under}${s.name}`;
    return prefix === 'param.' ? io.f32(name, s.shape) : io.grad(name, s.shape);
  };
  return Object.fromEntries(Object.entries(table).map(([k, s]) => [k, s ? get(s) : null])) as Bound<T>;
}

// ---------------------------------------------------------------------------------------------------------------
// One runner per kind. Each reads the case, runs forward, and (unless forwardOnly) backward.

type Runner = (io: CaseIO, back: boolean) => void | Promise<void>;

const RUNNERS: Record<FixtureKind, Runner> = {
  'dense-ffn'(io, back) {
    const cfg = KINDS['dense-ffn'].parse(io.c.config, io.where);
    const T = io.inp.tokens();
    const { d } = cfg;
    const x = io.f32('in.x', [T, d]);
    const table = denseFfnTable(cfg);
    const w = layerTensors(io, 'param.', table);
    const y = io.sc.f32(T * d);
    io.out('out.y', [T, d], y);
    const saved = denseFfnForward(io.sc, y, x, w, cfg, T);
    if (!back) return;
    const dy = io.f32('in.dy', [T, d]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g = layerTensors(io, 'grad.param.', table);
    denseFfnBackward(io.sc, dx, g, dy, x, w, saved, cfg, T);
  },

  topk(io, back) {
    const [T, F] = io.inp.shapeOf('in.x');
    const cfg = KINDS.topk.parse(io.c.config, io.where, [T, F]);
    const x = io.f32('in.x', [T, F]);
    const y = io.sc.f32(T * F);
    io.out('out.y', [T, F], y);
    const saved = topkForward(io.sc, y, x, cfg, T, F);
    io.out('idx.mask', [T, F], saved.mask, 'U8');
    if (!back) return;
    const dy = io.f32('in.dy', [T, F]);
    topkBackward(io.sc, io.grad('grad.in.x', [T, F]), dy, saved, cfg, T, F);
  },

  'topk-ffn'(io, back) {
    const cfg = KINDS['topk-ffn'].parse(io.c.config, io.where);
    const { d, F } = cfg;
    const T = io.inp.tokens();
    const x = io.f32('in.x', [T, d]);
    const table = topkFfnTable(cfg);
    const w = layerTensors(io, 'param.', table);
    const y = io.sc.f32(T * d);
    io.out('out.y', [T, d], y);
    const saved = topkFfnForward(io.sc, y, x, w, cfg, T);
    io.out('idx.mask', [T, F], saved.act.mask, 'U8');
    if (!back) return;
    const dy = io.f32('in.dy', [T, d]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g = layerTensors(io, 'grad.param.', table);
    topkFfnBackward(io.sc, dx, g, dy, x, w, saved, cfg, T);
  },

  smoe(io, back) {
    const cfg = KINDS.smoe.parse(io.c.config, io.where);
    const { d, F, E, k } = cfg;
    const T = io.inp.tokens();
    const x = io.f32('in.x', [T, d]);
    const roles = cfg.activation === 'swiglu' ? (['w1', 'w2', 'w3'] as const) : (['w1', 'w2'] as const);
    const spec = (e: number, r: (typeof roles)[number]) => smoeExpertTable(cfg, e)[r]!;
    const per = d * F; // every role is F·d numbers
    const stacked = (r: (typeof roles)[number]): F32 => {
      // Mixtral stores one tensor per expert; the grouped kernels want them stacked (E, ·, ·).
      const buf = new Float32Array(E * per);
      for (let e = 0; e < E; e++) {
        const s = spec(e, r);
        buf.set(toF32(io.inp.f64(`param.${s.name}`, s.shape)), e * per);
      }
      return io.sc.upload(buf);
    };
    const w = {
      gate: io.f32('param.gate.weight', [E, d]),
      w1: stacked('w1'),
      w2: stacked('w2'),
      w3: cfg.activation === 'swiglu' ? stacked('w3') : null,
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
    const gs: Partial<Record<(typeof roles)[number], F32>> = {};
    for (const r of roles) {
      const buf = new Float32Array(E * per);
      for (let e = 0; e < E; e++) {
        const init = io.opts?.gradInit?.get(`grad.param.${spec(e, r).name}`);
        if (init) buf.set(toF32(asF64(init, `gradInit ${spec(e, r).name}`)), e * per);
      }
      gs[r] = io.sc.upload(buf);
    }
    const g = { gate: gGate, w1: gs.w1!, w2: gs.w2!, w3: gs.w3 ?? null };
    smoeBackward(io.sc, dx, g, dy, x, w, saved, cfg, T, cfg.aux.balance, cfg.aux.z);
    for (const r of roles) {
      for (let e = 0; e < E; e++) {
        const part = io.sc.f32(per);
        io.sc.dev.kernels.copyBlock(part, gs[r]!, {
          rows: 1,
          cols: per,
          dstLd: per,
          srcLd: per,
          dstOffset: 0,
          srcOffset: e * per,
          accumulate: false,
        });
        io.out(`grad.param.${spec(e, r).name}`, spec(e, r).shape, part);
      }
    }
  },

  peer(io, back) {
    const cfg = devicePeerConfig(KINDS.peer.parse(io.c.config, io.where));
    const { d, H, k, dk } = cfg;
    const dq = H * dk;
    const T = io.inp.tokens();
    const x = io.f32('in.x', [T, d]);
    const table = peerTable(cfg);
    const p = layerTensors(io, 'param.', table);
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
    const g = layerTensors(io, 'grad.param.', table);
    peerBackward(io.sc, dx, g, dy, x, p, saved, cfg, T);
  },

  'monet-router'(io, back) {
    const cfg = deviceRouterConfig(KINDS['monet-router'].parse(io.c.config, io.where));
    const T = io.inp.tokens();
    const { d, H, E } = cfg;
    const x = io.f32('in.x', [T, d]);
    const r = router(io, '', cfg, T, x);
    if (!back) return;
    const dg1 = io.f32('in.dg1', [T, H, E]),
      dg2 = io.f32('in.dg2', [T, H, E]);
    const dx = io.grad('grad.in.x', [T, d]);
    const g = layerTensors(io, 'grad.param.', monetRouterTable(cfg));
    monetRouterBackward(io.sc, dx, g, dg1, dg2, x, r.p, r.saved, cfg, T);
  },

  'monet-hd'(io, back) {
    monetLayer(io, back, 'monet-hd');
  },
  'monet-vd'(io, back) {
    monetLayer(io, back, 'monet-vd');
  },

  lm: runLm,
};

/** Router forward for the router/hd/vd kinds: params under `<prefix>w1.weight`, state under `state.<prefix>norm1.*`. */
function router(io: CaseIO, prefix: string, cfg: MonetRouterConfig, T: number, x: F32) {
  const { H, E } = cfg;
  const p = layerTensors(io, 'param.', monetRouterTable(cfg), prefix);
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

function monetLayer(io: CaseIO, back: boolean, kind: 'monet-hd' | 'monet-vd'): void {
  const mc = KINDS[kind].parse(io.c.config, io.where);
  const cfg = deviceRouterConfig(mc);
  const { unifEps, aux } = mc;
  const T = io.inp.tokens();
  const { d, H, E } = cfg;
  const dims = { T, d, H, E, m: mc.m };
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
  const backBuffers = <R extends Record<string, ParamSpec | null>>(table: R) => ({
    dy: io.f32('in.dy', [T, d]),
    dx: io.grad('grad.in.x', [T, d]),
    g: layerTensors(io, 'grad.param.', table, 'moe.'),
    rg: layerTensors(io, 'grad.param.', monetRouterTable(cfg), 'router.'),
  });
  // After the expert layer's backward has filled dg1, dg2 (and its part of dx): the aux losses' and the router's
  const routerBackward = (dx: F32, rg: { w1: F32; w2: F32 }) => {
    monetAuxBackward(io.sc, dg1, dg2, r.saved, H, E, T, unifEps, aux.unif, aux.amb);
    monetRouterBackward(io.sc, dx, rg, dg1, dg2, x, r.p, r.saved, cfg, T);
  };
  if (kind === 'monet-hd') {
    const table = monetHdTable(mc);
    const p = layerTensors(io, 'param.', table, 'moe.');
    const saved = monetHdForward(io.sc, y, x, r.saved.g1, r.saved.g2, p, dims);
    if (!back) return;
    const { dy, dx, g, rg } = backBuffers(table);
    monetHdBackward(io.sc, dx, g, dg1, dg2, dy, x, r.saved.g1, r.saved.g2, p, saved, dims);
    routerBackward(dx, rg);
  } else {
    const table = monetVdTable(mc);
    const p = layerTensors(io, 'param.', table, 'moe.');
    const saved = monetVdForward(io.sc, y, x, r.saved.g1, r.saved.g2, p, dims);
    if (!back) return;
    const { dy, dx, g, rg } = backBuffers(table);
    monetVdBackward(io.sc, dx, g, dg1, dg2, dy, x, r.saved.g1, r.saved.g2, p, saved, dims);
    routerBackward(dx, rg);
  }
}

/** Fixture case `lm` on a device: out.loss, out.logits, aux averages, grad.param.*, next.* state. */
async function runLm(io: CaseIO, back: boolean): Promise<void> {
  const [B, S] = io.inp.shapeOf('in.tokens');
  const cfg = KINDS.lm.parse(io.c.config, io.where);
  // Checked on the host: on a device an id outside [0, V) would gather a row past the embedding table (garbage on
  // WebGPU, a read of unrelated WASM memory), never an error.
  const ids = io.inp.i32('in.tokens', [B, S]);
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < cfg.V))
      throw new Error(
        `${io.where}: tensor in.tokens: token id ${ids[i]} at row ${Math.floor(i / S)}, position ${i % S} is ` +
          `outside [0, config.vocab_size = ${cfg.V})`,
      );
  }
  const tokens = io.i32('in.tokens', [B, S]);
  const specs = [...lmParams(cfg)];
  const stateSpecs = [...lmState(cfg)];
  const params = new Map<string, F32>();
  for (const s of specs) params.set(s.name, io.f32(`param.${s.name}`, s.shape));
  const state = new Map<string, F32>();
  for (const s of stateSpecs) state.set(s.name, io.f32(`state.${s.name}`, s.shape));
  let grads: Map<string, F32> | null = null;
  if (back) {
    grads = new Map();
    for (const s of specs) grads.set(s.name, io.grad(`grad.param.${s.name}`, s.shape));
  }
  const model: LmModel = { cfg, params, grads, state };
  const saved = lmForward(io.sc, model, tokens, B, S);
  io.out('out.loss', [], saved.loss);
  io.out('out.logits', [B, S, cfg.V], saved.logits);
  // aux tensors hold Σ over producers of value/producers: the average the fixture stores
  for (const [n, t] of saved.aux) io.out(`out.${n}`, [], t);
  if (cfg.mode === 'train') for (const s of stateSpecs) io.out(`next.${s.name}`, s.shape, state.get(s.name)!);
  if (back) lmBackward(io.sc, model, saved);
}

/** Every fixture kind runs on every device. */
export const DEVICE_KINDS = FIXTURE_KINDS;

/** Runs a fixture case on a device and returns the produced out./grad./idx./next. tensors. */
export async function runCaseOnDevice(dev: Device, c: FixtureCase, opts?: RunOptions): Promise<TensorMap> {
  const sc = new Scope(dev);
  try {
    const io = new CaseIO(sc, c, opts);
    if (!Object.hasOwn(RUNNERS, c.kind))
      throw new Error(
        `${io.where}: kind '${c.kind}' is not supported on ${dev.name} (supported: ${DEVICE_KINDS.join(', ')})`,
      );
    await RUNNERS[c.kind as FixtureKind](io, !opts?.forwardOnly);
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
