// A training engine on a Device (wasm, webgpu, or the plain-JS one): the whole step — forward, backward, gradient
// norm, the skip/clip decision and AdamW — runs as device kernels (src/layers/lm.ts + the contract's sumSquares,
// stepGuard, copyIf and adamw). Nothing is read back during a step: the host reads one small tensor only when the
// loop asks for the result (every --log-every steps, and before an evaluation or a checkpoint).
//
// One step, all enqueued without waiting (ctl is the step-control tensor, slots STEP in src/backend/kernels.ts):
//   backup ← BN running statistics                     copyBlock (a few hundred floats)
//   ctl[loss, normSq, aux…] ← 0                         copyBlock from a zero tensor
//   per micro-batch: forward, backward (gradients add up), ctl[loss] += loss, ctl[aux_j] += aux_j
//   ctl[normSq] ← Σ_params sumSquares(grad)
//   stepGuard(ctl): clip factor, or skip flag + fault counters when the loss or ‖g‖ is NaN/±Inf
//   copyIf(BN stats ← backup, when skipped)              a skipped step leaves the running statistics as they were
//   adamw(p, g, m, v, ctl) per parameter                 reads scale and skip flag from ctl; skipped ⇒ untouched
// The fault counters (total faults, current streak, latest skipped step with its loss and norm) stay on the device
// and come back with the loss at the next read; the loop reports the skipped steps then (docs/robustness.md).
//
// Gradient accumulation: lmBackward adds the gradients of every micro-batch into the same buffers; the average is
// taken inside AdamW through gradScale = 1/accum (times the clip factor ctl[scale]), and the norm is that of the
// average (stepGuard divides by accum).

import { Scope, type Device } from '../backend/device.ts';
import { STEP, type F32 } from '../backend/kernels.ts';
import { parseLm } from '../kinds/lm.ts';
import { lmBackward, lmForward, type LmConfig, type LmModel } from '../layers/lm.ts';
import type { HostParams } from './checkpoint.ts';
import {
  nonFiniteReason,
  type Decoder,
  type Engine,
  type EngineInit,
  type EvalResult,
  type GroupRouting,
  type StepHyper,
  type StepResult,
  type StreamedTensor,
} from './engine.ts';
import { EngineUnavailable } from './engines.ts';
import { paramSpecs, stateSpecs, type ModelConfig, type ParamSpec } from './presets.ts';
import { checkTokenIds } from '../validate.ts';
import { WideningParams } from '../layers/packed-weights.ts';
import { freeKvCache, lmDecode, newKvCache } from '../layers/lm-decode.ts';

const AUX_COEF: Record<string, string> = { loss_balance: 'balance', loss_z: 'z', loss_unif: 'unif', loss_amb: 'amb' };
/** `state.model.layers.0.router.norm1.running_mean` (ours) ↔ `model.layers.0.router.norm1.running_mean`
 * (src/layers/lm.ts). */
const devStateName = (n: string) => n.replace(/^state\./, '');

export class DeviceEngine implements Engine {
  readonly dtype = 'F32' as const;
  readonly name: string;
  private specs: ParamSpec[];
  private params: WideningParams;
  private grads = new Map<string, F32>();
  private m = new Map<string, F32>();
  private v = new Map<string, F32>();
  private state = new Map<string, F32>();
  private stateBackup = new Map<string, F32>(); // BN statistics before the current step, restored if it is skipped
  private trainCfg: LmConfig;
  private evalCfg: LmConfig;
  private auxNames: string[];
  private ctl: F32; // (STEP.size + nAux) step control (STEP) with the step's report: Σ loss, ‖Σ g‖², then Σ aux_j
  private reportZeros: F32; // (2 + nAux) zeros: resets the report slots of ctl at the start of a step
  private evalReport: F32; // (2 + nAux) [Σ loss, unused, Σ aux_1, …] of an evaluation forward
  private normSq: F32; // (1) sumSquares target
  private readonly inferenceOnly: boolean; // no gradients, moments or backups (EngineInit.inferenceOnly)
  private faultsRead = 0; // ctl[STEP.faults] at the previous read: the skipped steps since then are the difference

  constructor(
    private dev: Device,
    readonly config: ModelConfig,
    init: EngineInit,
  ) {
    this.name = dev.name;
    this.inferenceOnly = init.inferenceOnly === true;
    this.specs = paramSpecs(config);
    this.trainCfg = parseLm({ ...config, mode: 'train' }, `model config (${config.ffn})`);
    this.evalCfg = parseLm({ ...config, mode: 'eval' }, `model config (${config.ffn})`);
    this.params = new WideningParams(dev);
    if ((init.packed || init.stream) && !this.inferenceOnly)
      throw new Error(`${dev.name} engine: 16-bit (packed) and streamed weights are for inference only`);
    // a streamed model arrives later, through receive()
    if (!init.stream) {
      for (const s of this.specs) {
        const bits = init.packed?.get(s.name);
        if (bits) {
          this.params.setPacked(s.name, bits);
          continue;
        }
        const p = init.params.get(s.name);
        if (!p) throw new Error(`${dev.name} engine: missing parameter '${s.name}'`);
        this.params.set(s.name, dev.upload(p instanceof Float32Array ? p : Float32Array.from(p)));
        if (this.inferenceOnly) continue;
        this.grads.set(s.name, dev.alloc('f32', p.length));
        const m0 = init.m?.get(s.name);
        const v0 = init.v?.get(s.name);
        this.m.set(s.name, m0 ? dev.upload(Float32Array.from(m0)) : dev.alloc('f32', p.length));
        this.v.set(s.name, v0 ? dev.upload(Float32Array.from(v0)) : dev.alloc('f32', p.length));
      }
      for (const s of stateSpecs(config)) {
        const a = init.state.get(s.name);
        if (!a) throw new Error(`${dev.name} engine: missing state '${s.name}'`);
        this.state.set(devStateName(s.name), dev.upload(Float32Array.from(a)));
        if (this.inferenceOnly) continue;
        this.stateBackup.set(devStateName(s.name), dev.alloc('f32', a.length));
      }
    }
    this.auxNames =
      config.ffn === 'smoe' ? ['loss_balance', 'loss_z'] : config.ffn === 'monet' ? ['loss_unif', 'loss_amb'] : [];
    this.ctl = dev.alloc('f32', STEP.size + this.auxNames.length);
    this.reportZeros = dev.alloc('f32', 2 + this.auxNames.length);
    this.evalReport = dev.alloc('f32', 2 + this.auxNames.length);
    this.normSq = dev.alloc('f32', 1);
  }

  /**
   * Uploads a streamed model (EngineInit.stream) tensor by tensor, each dropped by the host once it is on the
   * device; every parameter and state tensor of the config must arrive, each once, with its size.
   */
  async receive(stream: AsyncIterable<StreamedTensor>): Promise<void> {
    const where = `${this.dev.name} engine`;
    const sizes = new Map<string, number>();
    for (const s of this.specs)
      sizes.set(
        s.name,
        s.shape.reduce((a, b) => a * b, 1),
      );
    for (const s of stateSpecs(this.config))
      sizes.set(
        s.name,
        s.shape.reduce((a, b) => a * b, 1),
      );
    for await (const t of stream) {
      const n = sizes.get(t.name);
      if (n === undefined)
        throw new Error(`${where}: streamed tensor '${t.name}' is not part of the model, or came twice`);
      const length = t.into === 'packed' ? t.length : t.data.length;
      if (length !== n) throw new Error(`${where}: streamed tensor '${t.name}' has ${length} values, expected ${n}`);
      sizes.delete(t.name);
      if (t.into === 'packed') await this.params.setPackedPieces(t.name, t.length, t.pieces);
      else if (t.into === 'params') this.params.set(t.name, this.dev.upload(t.data));
      else this.state.set(devStateName(t.name), this.dev.upload(t.data));
    }
    if (sizes.size > 0) throw new Error(`${where}: the stream ended without '${[...sizes.keys()][0]}'`);
  }

  private model(cfg: LmConfig, withGrads: boolean, alpha: number): LmModel {
    this.params.settle(); // a new forward starts: 16-bit weight slots are free again
    if (cfg.ffn.kind === 'topk') cfg.ffn.topk.alpha = alpha;
    const packed = this.params.packed;
    return { cfg, params: this.params, grads: withGrads ? this.grads : null, state: this.state, packed };
  }

  /** Adds loss and aux values of one forward into a report: the loss at `lossAt`, aux term j at `auxAt + j`. */
  private addToReport(report: F32, lossAt: number, auxAt: number, loss: F32, aux: Map<string, F32>): void {
    const k = this.dev.kernels;
    const one = { rows: 1, cols: 1, dstLd: 1, srcLd: 1, srcOffset: 0, accumulate: true };
    k.copyBlock(report, loss, { ...one, dstOffset: lossAt });
    this.auxNames.forEach((n, j) => {
      const t = aux.get(n);
      if (t) k.copyBlock(report, t, { ...one, dstOffset: auxAt + j });
    });
  }

  /** Mean loss and cross-entropy from a report's sums over `count` forwards. */
  private decodeReport(r: Float32Array, lossAt: number, auxAt: number, count: number): { loss: number; ce: number } {
    const loss = r[lossAt] / count;
    let ce = loss;
    for (const [j, n] of this.auxNames.entries()) ce -= (this.config.aux?.[AUX_COEF[n]] ?? 0) * (r[auxAt + j] / count);
    return { loss, ce };
  }

  async trainStep(
    batches: Int32Array[],
    B: number,
    S: number,
    hp: StepHyper,
    wantResult: boolean,
  ): Promise<StepResult | null> {
    const k = this.dev.kernels;
    if (this.inferenceOnly) throw new Error(`${this.name} engine: opened for inference only; it cannot train`);
    for (const b of batches) this.checkBatch(b, B, S, 'training batch'); // before anything is enqueued
    const model = this.model(this.trainCfg, true, hp.alpha);
    const nReport = 2 + this.auxNames.length;
    for (const g of this.grads.values()) k.fill(g, { n: g.length, value: 0 });
    k.copyBlock(this.ctl, this.reportZeros, {
      rows: 1,
      cols: nReport,
      dstLd: nReport,
      srcLd: nReport,
      dstOffset: STEP.loss,
      srcOffset: 0,
      accumulate: false,
    });
    this.copyState(this.stateBackup, this.state);
    for (const b of batches) {
      const sc = new Scope(this.dev);
      const saved = lmForward(sc, model, sc.upload(b), B, S);
      lmBackward(sc, model, saved);
      this.addToReport(this.ctl, STEP.loss, STEP.size, saved.loss, saved.aux);
      sc.release();
    }
    const accum = batches.length;
    k.fill(this.normSq, { n: 1, value: 0 });
    for (const g of this.grads.values()) k.sumSquares(this.normSq, g, { n: g.length, accumulate: true });
    k.copyBlock(this.ctl, this.normSq, {
      rows: 1,
      cols: 1,
      dstLd: 1,
      srcLd: 1,
      dstOffset: STEP.normSq,
      srcOffset: 0,
      accumulate: false,
    });
    // The decision: clip factor, or skip (see the header). Everything after it reads ctl on the device.
    k.stepGuard(this.ctl, { accum, clip: hp.clip, step: hp.step });
    for (const [n, st] of this.state) k.copyIf(st, this.stateBackup.get(n)!, this.ctl, { n: st.length, at: STEP.skip });
    for (const s of this.specs) {
      const p = this.params.get(s.name)!;
      k.adamw(p, this.grads.get(s.name)!, this.m.get(s.name)!, this.v.get(s.name)!, this.ctl, {
        n: p.length,
        lr: hp.lr,
        beta1: hp.beta1,
        beta2: hp.beta2,
        eps: hp.eps,
        weightDecay: s.decay ? hp.weightDecay : 0,
        step: hp.step,
        gradScale: 1 / accum,
      });
    }
    if (!wantResult) return null;
    return this.readResult(accum);
  }

  /** The one readback: this step's loss and norm, and the faults the device counted since the previous read. */
  private async readResult(accum: number): Promise<StepResult> {
    const c = await this.dev.read(this.ctl);
    const result: StepResult = {
      ...this.decodeReport(c, STEP.loss, STEP.size, accum),
      gradNorm: Math.sqrt(c[STEP.normSq]) / accum,
    };
    const total = c[STEP.faults];
    const count = total - this.faultsRead;
    this.faultsRead = total;
    if (count > 0) {
      const reason = nonFiniteReason(c[STEP.lastLoss], c[STEP.lastNorm]) ?? 'loss or gradient norm not finite';
      result.faults = {
        count,
        streak: c[STEP.streak],
        streakFrom: c[STEP.streakFrom],
        lastStep: c[STEP.lastStep],
        lastLoss: c[STEP.lastLoss],
        lastNorm: c[STEP.lastNorm],
        reason,
      };
      if (c[STEP.skip] !== 0) result.skipped = nonFiniteReason(result.loss, result.gradNorm) ?? reason;
    }
    return result;
  }

  /**
   * Token ids are checked on the host before upload: on a device an id outside [0, V) gathers a row past the
   * embedding table (garbage on WebGPU, unrelated memory on WASM) instead of failing.
   */
  private checkBatch(tokens: Int32Array, B: number, S: number, what: string): void {
    if (tokens.length !== B * S)
      throw new Error(
        `${this.name} engine: ${what}: expected B·S = ${B}·${S} = ${B * S} token ids, found ${tokens.length}`,
      );
    checkTokenIds(tokens, this.config.vocab_size, `${this.name} engine: ${what}`, S);
  }

  /** dst[name] ← src[name] for every BN statistic (a few hundred floats). */
  private copyState(dst: Map<string, F32>, src: Map<string, F32>): void {
    for (const [n, s] of src) {
      this.dev.kernels.copyBlock(dst.get(n)!, s, {
        rows: 1,
        cols: s.length,
        dstLd: s.length,
        srcLd: s.length,
        dstOffset: 0,
        srcOffset: 0,
        accumulate: false,
      });
    }
  }

  async evalLoss(tokens: Int32Array, B: number, S: number, alpha: number): Promise<EvalResult> {
    const k = this.dev.kernels;
    this.checkBatch(tokens, B, S, 'validation batch');
    const sc = new Scope(this.dev);
    try {
      k.fill(this.evalReport, { n: this.evalReport.length, value: 0 });
      const saved = lmForward(sc, this.model(this.evalCfg, false, alpha), sc.upload(tokens), B, S, {
        keepLayers: false,
      });
      this.addToReport(this.evalReport, 0, 2, saved.loss, saved.aux);
      return this.decodeReport(await this.dev.read(this.evalReport), 0, 2, 1);
    } finally {
      sc.release();
    }
  }

  async nextLogits(tokens: Int32Array, alpha: number): Promise<Float32Array> {
    const S = tokens.length;
    const V = this.config.vocab_size;
    // The device LM computes its loss in every forward, which needs S ≥ 2; generate() guarantees two tokens.
    if (S < 2) throw new Error(`nextLogits: need at least 2 context tokens, found ${S}`);
    this.checkBatch(tokens, 1, S, 'context');
    const sc = new Scope(this.dev);
    try {
      const saved = lmForward(sc, this.model(this.evalCfg, false, alpha), sc.upload(tokens), 1, S, {
        keepLayers: false,
      });
      const all = await this.dev.read(saved.logits);
      return all.slice((S - 1) * V, S * V);
    } finally {
      sc.release();
    }
  }

  openDecoder(size: number, alpha: number): Decoder {
    const model = this.model(this.evalCfg, false, alpha);
    const cache = newKvCache(this.dev, model, size);
    const dev = this.dev;
    const check = (ids: Int32Array) => this.checkBatch(ids, 1, ids.length, 'decoder ids');
    const params = this.params;
    return {
      size,
      get length() {
        return cache.length;
      },
      async append(ids: Int32Array): Promise<Float32Array> {
        check(ids);
        params.settle();
        const sc = new Scope(dev);
        try {
          return await dev.read(lmDecode(sc, model, cache, sc.upload(ids), ids.length));
        } finally {
          sc.release();
        }
      },
      dispose: () => freeKvCache(dev, cache),
    };
  }

  /**
   * The routers' weights for `ids`: one prompt pass of the KV-cache forward (lmDecode, which keeps no layer's
   * temporaries past its group), a tap copying each router layer's g1, g2 out before its group ends, then reads.
   */
  async monetRouting(ids: Int32Array): Promise<GroupRouting[]> {
    const cfg = this.evalCfg;
    if (cfg.ffn.kind !== 'monet')
      throw new Error(`${this.name} engine: routing: the model's feed-forward is '${cfg.ffn.kind}', not Monet`);
    this.checkBatch(ids, 1, ids.length, 'routing ids');
    const T = ids.length;
    const { H, E } = cfg.ffn.monet;
    const { groups } = cfg.ffn;
    const kn = this.dev.kernels;
    const sc = new Scope(this.dev);
    const kept: Array<{ layer: number; g1: F32; g2: F32 }> = [];
    const model: LmModel = {
      ...this.model(cfg, false, 1),
      hooks: {
        afterFfn(_layerScope, layer, { ffn }) {
          if (ffn.kind !== 'monet' || !ffn.isRouterLayer(layer)) return;
          const { g1, g2 } = ffn.router(layer).saved;
          const all = { rows: 1, cols: T * H * E, dstLd: 0, srcLd: 0, dstOffset: 0, srcOffset: 0, accumulate: false };
          const c1 = sc.f32(T * H * E);
          const c2 = sc.f32(T * H * E);
          kn.copyBlock(c1, g1, all);
          kn.copyBlock(c2, g2, all);
          kept.push({ layer, g1: c1, g2: c2 });
        },
      },
    };
    const cache = newKvCache(this.dev, model, T);
    try {
      lmDecode(sc, model, cache, sc.upload(ids), T);
      const out: GroupRouting[] = [];
      for (const [group, k] of kept.entries()) {
        const layers = Array.from({ length: Math.min(groups, cfg.L - k.layer) }, (_, j) => k.layer + j);
        out.push({ group, layers, H, E, g1: await this.dev.read(k.g1), g2: await this.dev.read(k.g2) });
      }
      return out;
    } finally {
      freeKvCache(this.dev, cache);
      sc.release();
    }
  }

  async gradients(): Promise<HostParams> {
    const out: HostParams = new Map();
    for (const s of this.specs) out.set(s.name, await this.dev.read(this.grads.get(s.name)!));
    return out;
  }

  async exportModel(): Promise<{ params: HostParams; state: HostParams }> {
    const params: HostParams = new Map();
    for (const s of this.specs) params.set(s.name, await this.dev.read(this.params.get(s.name)!));
    const state: HostParams = new Map();
    for (const s of stateSpecs(this.config))
      state.set(s.name, await this.dev.read(this.state.get(devStateName(s.name))!));
    return { params, state };
  }

  async exportMoments(): Promise<{ m: HostParams; v: HostParams }> {
    const m: HostParams = new Map();
    const v: HostParams = new Map();
    for (const s of this.specs) {
      m.set(s.name, await this.dev.read(this.m.get(s.name)!));
      v.set(s.name, await this.dev.read(this.v.get(s.name)!));
    }
    return { m, v };
  }

  async dispose(): Promise<void> {
    await this.dev.dispose();
  }
}

export interface OpenDeviceOptions {
  /**
   * For `--backend auto`: accept WebGPU only on a hardware adapter. Mesa's software rasteriser (llvmpipe, the GL
   * route CI uses) is an adapter too, but on a CPU it trains far slower than the WASM kernels, so auto passes it by.
   */
  hardwareOnly?: boolean;
  /** Threads for the wasm device (default 1). */
  threads?: number;
}

/** Open the named device. Throws EngineUnavailable (with the reason) when it cannot run on this machine. */
async function openDevice(name: 'wasm' | 'webgpu' | 'js', o: OpenDeviceOptions): Promise<Device> {
  switch (name) {
    case 'js':
      return (await import('../backend/js/device.ts')).createJsDevice();
    case 'wasm': {
      const { createWasmDevice } = await import('../backend/wasm/node.ts');
      return createWasmDevice({ threads: o.threads });
    }
    case 'webgpu': {
      const { createWebGpuDevice } = await import('../backend/webgpu/device.ts');
      const { NoAdapterError } = await import('../backend/webgpu/gpu.ts');
      let dev: Awaited<ReturnType<typeof createWebGpuDevice>>;
      try {
        dev = await createWebGpuDevice();
      } catch (e) {
        if (e instanceof NoAdapterError) throw new EngineUnavailable(`webgpu: ${e.message}`);
        throw e;
      }
      if (o.hardwareOnly && (dev.gpu.compat || /llvmpipe|lavapipe|swiftshader/i.test(dev.gpu.description))) {
        const what = dev.gpu.description;
        dev.dispose();
        throw new EngineUnavailable(
          `the only WebGPU adapter is a software rasteriser (${what}); pass --backend webgpu to use it anyway`,
        );
      }
      return dev;
    }
  }
}

export async function createDeviceEngine(
  name: 'wasm' | 'webgpu' | 'js',
  init: EngineInit,
  o: OpenDeviceOptions = {},
): Promise<Engine> {
  const dev = await openDevice(name, o);
  try {
    const engine = new DeviceEngine(dev, init.config, init);
    if (init.stream) await engine.receive(init.stream());
    return engine;
  } catch (e) {
    await dev.dispose();
    throw e;
  }
}
