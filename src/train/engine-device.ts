// A training engine on a Device (wasm, webgpu, or the plain-JS one): the whole step — forward, backward, gradient
// norm, clipping and AdamW — runs as device kernels (src/layers/lm.ts + the contract's sumSquares and adamw).
//
// What crosses back to the host per step: one small "report" tensor (loss, aux terms, squared gradient norm), read
// before AdamW at every step: the clip factor is a host scalar of the contract's `adamw`, and a step whose loss or
// gradient is not finite must be skipped before it reaches the parameters (docs/robustness.md).
//
// Gradient accumulation: lmBackward adds the gradients of every micro-batch into the same buffers; the average is
// taken inside AdamW through gradScale = clipFactor / accum, and the norm is that of the average.

import { Scope, type Device } from '../backend/device.ts';
import type { F32 } from '../backend/kernels.ts';
import { lmBackward, lmForward, parseLmConfig, type LmConfig, type LmModel } from '../layers/lm.ts';
import type { HostParams } from './checkpoint.ts';
import { clipScale, nonFiniteReason, type Engine, type EngineInit, type EvalResult, type StepHyper, type StepResult } from './engine.ts';
import { EngineUnavailable } from './engines.ts';
import { paramSpecs, stateSpecs, type ModelConfig, type ParamSpec } from './presets.ts';
import { checkTokenIds } from '../validate.ts';

const AUX_COEF: Record<string, string> = { loss_balance: 'balance', loss_z: 'z', loss_unif: 'unif', loss_amb: 'amb' };
/** `state.model.layers.0.router.norm1.running_mean` (ours) ↔ `model.layers.0.router.norm1.running_mean` (src/layers/lm.ts). */
const devStateName = (n: string) => n.replace(/^state\./, '');

export class DeviceEngine implements Engine {
  readonly dtype = 'F32' as const;
  readonly name: string;
  private specs: ParamSpec[];
  private params = new Map<string, F32>();
  private grads = new Map<string, F32>();
  private m = new Map<string, F32>();
  private v = new Map<string, F32>();
  private state = new Map<string, F32>();
  private stateBackup = new Map<string, F32>(); // BN statistics before the current step, restored if it is skipped
  private trainCfg: LmConfig;
  private evalCfg: LmConfig;
  private auxNames: string[];
  private report: F32; // (2 + nAux): [Σ loss, ‖Σ g‖², Σ aux_1, …] over the micro-batches of a step
  private normSq: F32; // (1) sumSquares target

  constructor(private dev: Device, readonly config: ModelConfig, init: EngineInit) {
    this.name = dev.name;
    this.specs = paramSpecs(config);
    this.trainCfg = parseLmConfig({ ...config, mode: 'train' } as unknown as Record<string, unknown>, `model config (${config.ffn})`);
    this.evalCfg = parseLmConfig({ ...config, mode: 'eval' } as unknown as Record<string, unknown>, `model config (${config.ffn})`);
    for (const s of this.specs) {
      const p = init.params.get(s.name);
      if (!p) throw new Error(`${dev.name} engine: missing parameter '${s.name}'`);
      this.params.set(s.name, dev.upload(Float32Array.from(p)));
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
      this.stateBackup.set(devStateName(s.name), dev.alloc('f32', a.length));
    }
    this.auxNames = config.ffn === 'smoe' ? ['loss_balance', 'loss_z'] : config.ffn === 'monet' ? ['loss_unif', 'loss_amb'] : [];
    this.report = dev.alloc('f32', 2 + this.auxNames.length);
    this.normSq = dev.alloc('f32', 1);
  }

  private model(cfg: LmConfig, withGrads: boolean, alpha: number): LmModel {
    if (cfg.topk) cfg.topk.alpha = alpha;
    return { cfg, params: this.params, grads: withGrads ? this.grads : null, state: this.state };
  }

  /** Adds loss and aux values of one forward into the report slots. */
  private addToReport(loss: F32, aux: Map<string, F32>): void {
    const k = this.dev.kernels;
    const one = { rows: 1, cols: 1, dstLd: 1, srcLd: 1, srcOffset: 0, accumulate: true };
    k.copyBlock(this.report, loss, { ...one, dstOffset: 0 });
    this.auxNames.forEach((n, j) => {
      const t = aux.get(n);
      if (t) k.copyBlock(this.report, t, { ...one, dstOffset: 2 + j });
    });
  }

  private decodeReport(r: Float32Array, count: number): { loss: number; ce: number } {
    const loss = r[0] / count;
    let ce = loss;
    this.auxNames.forEach((n, j) => (ce -= (this.config.aux?.[AUX_COEF[n]] ?? 0) * (r[2 + j] / count)));
    return { loss, ce };
  }

  async trainStep(batches: Int32Array[], B: number, S: number, hp: StepHyper, wantResult: boolean): Promise<StepResult | null> {
    const k = this.dev.kernels;
    const model = this.model(this.trainCfg, true, hp.alpha);
    for (const g of this.grads.values()) k.fill(g, { n: g.length, value: 0 });
    k.fill(this.report, { n: this.report.length, value: 0 });
    this.copyState(this.stateBackup, this.state);
    for (const b of batches) {
      this.checkBatch(b, B, S, 'training batch');
      const sc = new Scope(this.dev);
      const saved = lmForward(sc, model, sc.upload(b), B, S);
      lmBackward(sc, model, saved);
      this.addToReport(saved.loss, saved.aux);
      sc.release();
    }
    const accum = batches.length;
    k.fill(this.normSq, { n: 1, value: 0 });
    for (const g of this.grads.values()) k.sumSquares(this.normSq, g, { n: g.length, accumulate: true });
    k.copyBlock(this.report, this.normSq, { rows: 1, cols: 1, dstLd: 1, srcLd: 1, dstOffset: 1, srcOffset: 0, accumulate: false });
    const rep = await this.dev.read(this.report);
    const gradNorm = Math.sqrt(rep[1]) / accum; // of the averaged gradient
    const result = { ...this.decodeReport(rep, accum), gradNorm };
    const bad = nonFiniteReason(result.loss, gradNorm);
    if (bad) {
      this.copyState(this.state, this.stateBackup); // no AdamW update; BN statistics as before the step
      return { ...result, skipped: bad };
    }
    const gradScale = (hp.clip > 0 ? clipScale(gradNorm, hp.clip) : 1) / accum;
    for (const s of this.specs) {
      const p = this.params.get(s.name)!;
      k.adamw(p, this.grads.get(s.name)!, this.m.get(s.name)!, this.v.get(s.name)!, {
        n: p.length, lr: hp.lr, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: s.decay ? hp.weightDecay : 0, step: hp.step, gradScale,
      });
    }
    return wantResult ? result : null;
  }

  /**
   * Token ids are checked on the host before upload: on a device an id outside [0, V) gathers a row past the
   * embedding table (garbage on WebGPU, unrelated memory on WASM) instead of failing.
   */
  private checkBatch(tokens: Int32Array, B: number, S: number, what: string): void {
    if (tokens.length !== B * S) throw new Error(`${this.name} engine: ${what}: expected B·S = ${B}·${S} = ${B * S} token ids, found ${tokens.length}`);
    checkTokenIds(tokens, this.config.vocab_size, `${this.name} engine: ${what}`, S);
  }

  /** dst[name] ← src[name] for every BN statistic (a few hundred floats). */
  private copyState(dst: Map<string, F32>, src: Map<string, F32>): void {
    for (const [n, s] of src) {
      this.dev.kernels.copyBlock(dst.get(n)!, s, { rows: 1, cols: s.length, dstLd: s.length, srcLd: s.length, dstOffset: 0, srcOffset: 0, accumulate: false });
    }
  }

  async evalLoss(tokens: Int32Array, B: number, S: number, alpha: number): Promise<EvalResult> {
    const k = this.dev.kernels;
    this.checkBatch(tokens, B, S, 'validation batch');
    const sc = new Scope(this.dev);
    try {
      k.fill(this.report, { n: this.report.length, value: 0 });
      const saved = lmForward(sc, this.model(this.evalCfg, false, alpha), sc.upload(tokens), B, S);
      this.addToReport(saved.loss, saved.aux);
      return this.decodeReport(await this.dev.read(this.report), 1);
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
      const saved = lmForward(sc, this.model(this.evalCfg, false, alpha), sc.upload(tokens), 1, S);
      const all = await this.dev.read(saved.logits);
      return all.slice((S - 1) * V, S * V);
    } finally {
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
    for (const s of stateSpecs(this.config)) state.set(s.name, await this.dev.read(this.state.get(devStateName(s.name))!));
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
}

/** Open the named device. Throws EngineUnavailable (with the reason) when it cannot run on this machine. */
async function openDevice(name: 'wasm' | 'webgpu' | 'js', o: OpenDeviceOptions): Promise<Device> {
  switch (name) {
    case 'js':
      return (await import('../backend/js/device.ts')).createJsDevice();
    case 'wasm': {
      const { createWasmDevice } = await import('../backend/wasm/node.ts');
      return createWasmDevice();
    }
    case 'webgpu': {
      const { createWebGpuDevice } = await import('../backend/webgpu/device.ts');
      const { NoAdapterError } = await import('../backend/webgpu/gpu.ts');
      let dev;
      try {
        dev = await createWebGpuDevice();
      } catch (e) {
        if (e instanceof NoAdapterError) throw new EngineUnavailable(`webgpu: ${e.message}`);
        throw e;
      }
      if (o.hardwareOnly && (dev.gpu.compat || /llvmpipe|lavapipe|swiftshader/i.test(dev.gpu.description))) {
        const what = dev.gpu.description;
        dev.dispose();
        throw new EngineUnavailable(`the only WebGPU adapter is a software rasteriser (${what}); pass --backend webgpu to use it anyway`);
      }
      return dev;
    }
  }
}

export async function createDeviceEngine(name: 'wasm' | 'webgpu' | 'js', init: EngineInit, o: OpenDeviceOptions = {}): Promise<Engine> {
  const dev = await openDevice(name, o);
  try {
    return new DeviceEngine(dev, init.config, init);
  } catch (e) {
    await dev.dispose();
    throw e;
  }
}
