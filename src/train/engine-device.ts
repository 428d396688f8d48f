// A training engine on a Device (wasm, webgpu, or the plain-JS one): the whole step — forward, backward, gradient
// norm, clipping and AdamW — runs as device kernels (src/layers/lm.ts + the contract's sumSquares and adamw).
//
// What crosses back to the host per step: one small "report" tensor (loss, aux terms, squared gradient norm), read
// before AdamW at every step: the clip factor is a host scalar of the contract's `adamw`, and a step whose loss or
// gradient is not finite must be skipped before it reaches the parameters (docs/robustness.md).
//
// With checkEveryStep: false (`monet train --no-step-check`) nothing comes back during a step unless the loop asks
// for the loss (every --log-every steps): a WebGPU step then never waits for the GPU. The clip factor min(1, clip/‖g‖)
// is computed on the device from contract kernels:
//   ‖g‖²            sumSquares over every gradient                                          (1)
//   y = clip/‖g‖    batchnorm of the constant x = clip with mean 0 and "variance" ‖g‖²:       (1)
//                   (x − 0)/sqrt(‖g‖² + ε) — BatchNorm's normalisation is a divide by a device-side root
//   s = min(1, y)   = 1 − relu(1 − y), with axpby and activation                            (1)
//   g' = g·s        matmul of g as an (n, 1) matrix by s as a (1, 1) matrix (a broadcast multiply)
// then adamw(p, g', m, v) with gradScale = 1/accum. (ε = 1e-12 on the squared norm stands for PyTorch's +1e-6 on the
// norm; the two differ by < 1e-5 relative for any norm above 0.1.)
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
  private checkEveryStep: boolean;
  // Device-side clipping (checkEveryStep false), see the header:
  private scaled: F32; // (largest parameter) a gradient times the clip factor
  private zero: F32; // (1) 0
  private one: F32; // (1) 1
  private clipX: F32; // (1) scratch of clipFactor
  private clipY: F32;
  private clipT: F32;
  private clipR: F32;
  private clipS: F32; // (1) the clip factor

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
    this.checkEveryStep = init.checkEveryStep ?? true;
    this.scaled = dev.alloc('f32', this.checkEveryStep ? 1 : Math.max(...this.specs.map((q) => q.shape.reduce((a, b) => a * b, 1))));
    this.zero = dev.alloc('f32', 1);
    this.one = dev.upload(Float32Array.of(1));
    this.clipX = dev.alloc('f32', 1);
    this.clipY = dev.alloc('f32', 1);
    this.clipT = dev.alloc('f32', 1);
    this.clipR = dev.alloc('f32', 1);
    this.clipS = dev.alloc('f32', 1);
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
    if (!this.checkEveryStep) return this.finishOnDevice(hp, accum, wantResult);
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

  /** The rest of a step without reading anything back unless the loop wants the result (see the header). */
  private async finishOnDevice(hp: StepHyper, accum: number, wantResult: boolean): Promise<StepResult | null> {
    const k = this.dev.kernels;
    const clip = hp.clip > 0;
    if (clip || wantResult) {
      k.fill(this.normSq, { n: 1, value: 0 });
      for (const g of this.grads.values()) k.sumSquares(this.normSq, g, { n: g.length, accumulate: true });
      k.copyBlock(this.report, this.normSq, { rows: 1, cols: 1, dstLd: 1, srcLd: 1, dstOffset: 1, srcOffset: 0, accumulate: false });
    }
    if (clip) this.clipFactor(hp.clip * accum); // ‖Σg‖ = accum·‖avg g‖, so clip·accum/‖Σg‖ = clip/‖avg g‖
    for (const s of this.specs) {
      const p = this.params.get(s.name)!;
      let g = this.grads.get(s.name)!;
      if (clip) {
        k.matmul(this.scaled, g, this.clipS, { M: p.length, N: 1, K: 1, transA: false, transB: false, accumulate: false });
        g = this.scaled;
      }
      k.adamw(p, g, this.m.get(s.name)!, this.v.get(s.name)!, {
        n: p.length, lr: hp.lr, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: s.decay ? hp.weightDecay : 0, step: hp.step, gradScale: 1 / accum,
      });
    }
    if (!wantResult) return null;
    const rep = await this.dev.read(this.report);
    return { ...this.decodeReport(rep, accum), gradNorm: Math.sqrt(rep[1]) / accum };
  }

  /** clipS (1) = min(1, c / sqrt(normSq + 1e-12)), on the device (see the header). */
  private clipFactor(c: number): void {
    const k = this.dev.kernels;
    const one = { n: 1 };
    k.fill(this.clipX, { ...one, value: c });
    k.batchnorm(this.clipY, this.clipX, this.zero, this.normSq, this.one, this.zero, { rows: 1, cols: 1, eps: 1e-12 });
    k.fill(this.clipT, { ...one, value: 1 });
    k.axpby(this.clipT, this.clipY, { ...one, alpha: -1, beta: 1 }); // 1 − y
    k.activation(this.clipR, this.clipT, { ...one, kind: 'relu' }); // relu(1 − y)
    k.fill(this.clipS, { ...one, value: 1 });
    k.axpby(this.clipS, this.clipR, { ...one, alpha: -1, beta: 1 }); // 1 − relu(1 − y) = min(1, y)
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
