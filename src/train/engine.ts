// What the training loop needs from a backend, and the host-side AdamW used by the float64 reference engine.
//
// An Engine owns the model on its backend: parameters, gradients, AdamW moments and BatchNorm state. The loop hands
// it batches and hyper-parameters; the engine runs forward, backward, the gradient norm, clipping and AdamW where
// its data lives (for wasm/webgpu: on the device; only the numbers asked for come back).
//
// Sizes: B sequences per micro-batch, S tokens per sequence, V vocabulary.

import type { ModelConfig } from './presets.ts';
import type { HostArray, HostParams } from './checkpoint.ts';

export interface StepHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number; // applied only to parameters whose ParamSpec says decay
  clip: number; // global gradient-norm clip; 0 = off
  /** 1-based AdamW step count (bias correction). */
  step: number;
  /** TopK α for this step (ignored by other kinds). */
  alpha: number;
}

export interface StepResult {
  loss: number; // mean over the micro-batches of out.loss (CE + Σ coef·aux)
  ce: number; // mean next-token cross-entropy alone
  gradNorm: number; // global L2 norm of the gradient before clipping
  /**
   * Set when the step was NOT applied because the loss or the gradient norm is not finite (NaN or ±Inf): parameters,
   * AdamW moments and BatchNorm running statistics are left as they were before the step. Says which value failed.
   */
  skipped?: string;
  /**
   * Device engines decide skip/clip on the device and count faults there (docs/robustness.md); a result they return
   * (only when asked, every few steps) carries the skipped steps since their previous result, this one included.
   * The reference engine checks every step on the host and reports each skipped step itself (`skipped`).
   */
  faults?: StepFaults;
}

/** Skipped steps a device engine counted since its previous result. */
export interface StepFaults {
  /** how many steps were skipped since the previous result */
  count: number;
  /** consecutive skipped steps ending at this step (0: this step was applied) */
  streak: number;
  /** first step of the latest streak of skipped steps */
  streakFrom: number;
  /** the latest skipped step, its loss and gradient norm, and why it was skipped */
  lastStep: number;
  lastLoss: number;
  lastNorm: number;
  reason: string;
}

/** Why a step must be skipped (loss or gradient norm not finite), or null when it may be applied. */
export function nonFiniteReason(loss: number, gradNorm: number): string | null {
  if (!Number.isFinite(loss)) return `loss is ${loss}`;
  if (!Number.isFinite(gradNorm)) return `gradient norm is ${gradNorm} (a gradient element is NaN or infinite)`;
  return null;
}

export interface EvalResult {
  loss: number;
  ce: number;
}

export interface Engine {
  /** 'reference', 'wasm', 'webgpu' with any detail ('webgpu (NVIDIA H100)'). */
  readonly name: string;
  /** Storage type of the values a checkpoint from this engine holds. */
  readonly dtype: 'F64' | 'F32';
  readonly config: ModelConfig;
  /**
   * One optimizer step over the micro-batches (gradient accumulation: the gradients of all micro-batches are
   * averaged). A step whose loss or gradient is not finite is skipped (no update). When `wantResult` is false an
   * engine may return null instead of the numbers: a device engine then reads nothing back and reports the skipped
   * steps in `faults` of its next result; the reference engine returns a skipped step's result always.
   */
  trainStep(
    batches: Int32Array[],
    B: number,
    S: number,
    hp: StepHyper,
    wantResult: boolean,
  ): Promise<StepResult | null>;
  /** Loss of one batch in eval mode (BatchNorms use running statistics; nothing is updated). */
  evalLoss(tokens: Int32Array, B: number, S: number, alpha: number): Promise<EvalResult>;
  /** Logits (V) of the next token after `tokens` (one sequence), eval mode. */
  nextLogits(tokens: Int32Array, alpha: number): Promise<Float32Array | Float64Array>;
  /** A KV-cache decoder over at most `size` positions, eval mode (device engines; absent on the reference). */
  openDecoder?(size: number, alpha: number): Decoder;
  /** Monet models on device engines: every router group's routing weights for the tokens of `ids` (eval mode). */
  monetRouting?(ids: Int32Array): Promise<GroupRouting[]>;
  /** Parameters and BN state, as host arrays (names: paramSpecs / stateSpecs). */
  exportModel(): Promise<{ params: HostParams; state: HostParams }>;
  /** AdamW moments. */
  exportMoments(): Promise<{ m: HostParams; v: HostParams }>;
  /** Gradients of the last step (summed over its micro-batches, before clipping) — for the trajectory test. */
  gradients(): Promise<HostParams>;
  dispose(): Promise<void>;
}

/**
 * The routing of one Monet router group over a sequence of T tokens: g1, g2 (T, H, E) the weights of router 1 (the
 * experts' bottom halves i) and router 2 (top halves j) per head; composite expert (i, j) of token t gets
 * Σ_h g1[t,h,i]·g2[t,h,j]. `layers`: the layers sharing this router.
 */
export interface GroupRouting {
  group: number;
  layers: number[];
  H: number;
  E: number;
  g1: Float32Array;
  g2: Float32Array;
}

/** Generation with a KV cache: ids go in (the prompt once, then one at a time), next-token logits come out. */
export interface Decoder {
  /** Positions it can hold. */
  readonly size: number;
  /** Positions it holds. */
  readonly length: number;
  /** Logits (V) of the next token after `ids` (any number of ids per call: the prompt at once or in pieces). */
  append(ids: Int32Array): Promise<Float32Array>;
  dispose(): void;
}

export interface EngineInit {
  config: ModelConfig;
  params: HostParams;
  state: HostParams;
  /** Moments when resuming; zeros otherwise. */
  m?: HostParams;
  v?: HostParams;
  /**
   * Only evaluate and generate (a downloaded model): no gradient, moment or backup buffers are allocated, which
   * keeps device memory at the parameters and state; trainStep then refuses.
   */
  inferenceOnly?: boolean;
  /**
   * Weights kept as bfloat16 bits (inference only): held packed on the device and read in place by the forward
   * (src/layers/packed-weights.ts). A name here is not looked up in `params`.
   */
  packed?: Map<string, Uint16Array>;
  /**
   * The model as a stream of tensors instead of the maps above (inference only, device backends): each one is
   * uploaded as it arrives and dropped, so the host never holds the whole model next to the device's copy (a 1.4B
   * folder is 2.9 GB). A function, so that a backend tried after another one failed to open reads afresh.
   */
  stream?: () => AsyncIterable<StreamedTensor>;
}

/**
 * One tensor of a streamed model (EngineInit.stream): float32 data, or the bfloat16 bits of a matrix kept 16-bit,
 * `length` of them, handed over in pieces (in order; every piece but the last of even length) so that a large
 * matrix never sits whole in host memory (the 1.4B's head is 131 MB of bfloat16). A piece may be a view of a buffer
 * that the next piece reuses: copy it before asking for the next.
 */
export type StreamedTensor =
  | { name: string; into: 'params' | 'state'; data: Float32Array }
  | { name: string; into: 'packed'; length: number; pieces: AsyncIterable<Uint16Array> };

/**
 * AdamW on host arrays, the contract's `adamw` kernel in float64 (PyTorch semantics, decoupled weight decay):
 *   p −= lr·wd·p;  g ← gradScale·g;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 *   p −= lr·(m/(1−β1^t)) / (sqrt(v/(1−β2^t)) + eps).
 */
export function adamwHost(
  p: HostArray,
  g: HostArray,
  m: HostArray,
  v: HostArray,
  hp: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number; gradScale: number },
): void {
  const { lr, beta1, beta2, eps, weightDecay, step, gradScale } = hp;
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * gradScale;
    const mi = beta1 * m[i] + (1 - beta1) * gi;
    const vi = beta2 * v[i] + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
  }
}

/** Clip factor for a global gradient norm (PyTorch clip_grad_norm_: clip/(norm + 1e-6), at most 1). */
export function clipScale(norm: number, clip: number): number {
  if (!(clip > 0)) return 1;
  return Math.min(1, clip / (norm + 1e-6));
}
