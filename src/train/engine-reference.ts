// The float64 reference as a training engine: reference/lm.ts forward and backward, AdamW on the host.
// Slow (plain TypeScript loops over Float64Array) and exact; for tiny models, tests and the trajectory check.

import { lmBackward, lmForward, type LmConfig } from '../../reference/lm.ts';
import { parseLm } from '../kinds/lm.ts';
import type { Params } from '../../reference/common.ts';
import {
  adamwHost,
  clipScale,
  nonFiniteReason,
  type Engine,
  type EngineInit,
  type EvalResult,
  type StepHyper,
  type StepResult,
} from './engine.ts';
import type { HostParams } from './checkpoint.ts';
import { paramSpecs, stateSpecs, type ModelConfig, type ParamSpec } from './presets.ts';

/** `state.model.layers.0.router.norm1.running_mean` (ours) ↔ `model.layers.0.router.norm1.running_mean`
 * (reference/lm.ts). */
const refStateName = (n: string) => n.replace(/^state\./, '');

export class ReferenceEngine implements Engine {
  readonly name = 'reference';
  readonly dtype = 'F64' as const;
  private specs: ParamSpec[];
  private params: Params = {};
  private grads: Params = {};
  private m: Params = {};
  private v: Params = {};
  private state: Params = {}; // reference names (no `state.` prefix)
  private models = new Map<string, LmConfig>();

  constructor(
    readonly config: ModelConfig,
    init: EngineInit,
  ) {
    this.specs = paramSpecs(config);
    for (const s of this.specs) {
      const p = init.params.get(s.name);
      if (!p) throw new Error(`reference engine: missing parameter '${s.name}'`);
      this.params[s.name] = Float64Array.from(p);
      this.grads[s.name] = new Float64Array(p.length);
      this.m[s.name] = init.m?.get(s.name) ? Float64Array.from(init.m.get(s.name)!) : new Float64Array(p.length);
      this.v[s.name] = init.v?.get(s.name) ? Float64Array.from(init.v.get(s.name)!) : new Float64Array(p.length);
    }
    for (const s of stateSpecs(config)) {
      const a = init.state.get(s.name);
      if (!a) throw new Error(`reference engine: missing state '${s.name}'`);
      this.state[refStateName(s.name)] = Float64Array.from(a);
    }
    this.model('train', 1); // validates the config against reference/lm.ts now, not at the first step
  }

  /** reference/lm.ts reads mode and α from the config; one parsed model per (mode, α). */
  private model(mode: 'train' | 'eval', alpha: number): LmConfig {
    const a = this.config.ffn === 'topk' ? alpha : undefined;
    const key = `${mode}/${a}`;
    let m = this.models.get(key);
    if (!m) {
      const raw: Record<string, unknown> = { ...this.config, mode };
      if (a !== undefined) raw.alpha = a;
      m = parseLm(raw, `model config (${this.config.ffn})`);
      if (this.models.size > 8) this.models.clear(); // α changes every step while annealing
      this.models.set(key, m);
    }
    return m;
  }

  async trainStep(
    batches: Int32Array[],
    B: number,
    S: number,
    hp: StepHyper,
    wantResult: boolean,
  ): Promise<StepResult | null> {
    const model = this.model('train', hp.alpha);
    for (const g of Object.values(this.grads)) g.fill(0);
    let loss = 0;
    let ce = 0;
    const scale = 1 / batches.length;
    const stateBefore = { ...this.state }; // forward replaces the arrays (fwd.next), so these stay the old values
    for (const tokens of batches) {
      const fwd = lmForward(model, this.params, tokens, B, S, this.state);
      lmBackward(model, this.params, fwd, this.grads, scale);
      // BatchNorm running statistics move on after every forward in train mode (PyTorch semantics).
      for (const [k, v] of Object.entries(fwd.next)) this.state[k] = v;
      loss += fwd.loss * scale;
      ce += fwd.ce * scale;
    }
    let sq = 0;
    for (const g of Object.values(this.grads)) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    const gradNorm = Math.sqrt(sq);
    const bad = nonFiniteReason(loss, gradNorm);
    if (bad) {
      // Skip: no AdamW update, and the BN statistics go back to what they were (a NaN batch would poison them).
      this.state = stateBefore;
      return { loss, ce, gradNorm, skipped: bad };
    }
    const gradScale = clipScale(gradNorm, hp.clip);
    for (const s of this.specs) {
      adamwHost(this.params[s.name], this.grads[s.name], this.m[s.name], this.v[s.name], {
        lr: hp.lr,
        beta1: hp.beta1,
        beta2: hp.beta2,
        eps: hp.eps,
        weightDecay: s.decay ? hp.weightDecay : 0,
        step: hp.step,
        gradScale,
      });
    }
    return wantResult ? { loss, ce, gradNorm } : null;
  }

  async evalLoss(tokens: Int32Array, B: number, S: number, alpha: number): Promise<EvalResult> {
    const fwd = lmForward(this.model('eval', alpha), this.params, tokens, B, S, this.state);
    return { loss: fwd.loss, ce: fwd.ce };
  }

  async nextLogits(tokens: Int32Array, alpha: number): Promise<Float64Array> {
    const S = tokens.length;
    const fwd = lmForward(this.model('eval', alpha), this.params, tokens, 1, S, this.state);
    const V = this.config.vocab_size;
    return fwd.logits.slice((S - 1) * V, S * V);
  }

  /** Gradients of the last step (after accumulation, before clipping) — for the trajectory test. */
  async gradients(): Promise<HostParams> {
    return new Map(Object.entries(this.grads).map(([k, v]) => [k, Float64Array.from(v)]));
  }

  async exportModel(): Promise<{ params: HostParams; state: HostParams }> {
    const params: HostParams = new Map(this.specs.map((s) => [s.name, Float64Array.from(this.params[s.name])]));
    const state: HostParams = new Map(
      stateSpecs(this.config).map((s) => [s.name, Float64Array.from(this.state[refStateName(s.name)])]),
    );
    return { params, state };
  }

  async exportMoments(): Promise<{ m: HostParams; v: HostParams }> {
    return {
      m: new Map(this.specs.map((s) => [s.name, Float64Array.from(this.m[s.name])])),
      v: new Map(this.specs.map((s) => [s.name, Float64Array.from(this.v[s.name])])),
    };
  }

  async dispose(): Promise<void> {}
}
