// Tensor declarations shared by the kinds: a parameter's name, shape, initialisation and whether AdamW decays it; a
// state tensor's name, shape and initial value; and the layout of a fixture case (what the loader checks a file
// against).

export type Shape = number[];

/** A parameter (names relative to its layer, or full checkpoint names in an LM). */
export interface ParamSpec {
  name: string;
  shape: Shape;
  /** normal(0, std) for weights and embeddings, ones for norm scales, zeros for biases. */
  init: 'normal' | 'ones' | 'zeros';
  /** AdamW weight decay applies (weights and embeddings; never norms and biases, incl. Monet's b/b1/b2). */
  decay: boolean;
}

/** A non-trained state tensor (BatchNorm running statistics) and its initial value (PyTorch: mean 0, var 1). */
export interface StateSpec {
  name: string;
  shape: Shape;
  init: 'zeros' | 'ones';
}

export const weight = (name: string, shape: Shape): ParamSpec => ({ name, shape, init: 'normal', decay: true });
export const bias = (name: string, shape: Shape): ParamSpec => ({ name, shape, init: 'zeros', decay: false });
export const scale = (name: string, shape: Shape): ParamSpec => ({ name, shape, init: 'ones', decay: false });

/** BatchNorm running statistics `<prefix>running_mean` (zeros) and `<prefix>running_var` (ones), each (C). */
export function runningStats(prefix: string, C: number): StateSpec[] {
  return [
    { name: `${prefix}running_mean`, shape: [C], init: 'zeros' },
    { name: `${prefix}running_var`, shape: [C], init: 'ones' },
  ];
}

/** The same specs with a name prefix (e.g. `router.`, `model.layers.3.mlp.`). */
export function prefixed<S extends { name: string }>(prefix: string, specs: Iterable<S>): S[] {
  return [...specs].map((s) => ({ ...s, name: prefix + s.name }));
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Names (with their prefix) and shapes a correct fixture case of a kind has. */
export interface KindLayout {
  /** in.* the case reads, in the order a generator draws them. */
  inputs: Map<string, Shape>;
  /** in.* names that only backward reads (the upstream gradients): a forward-only file may omit them. */
  seeds: string[];
  /** in.* names whose gradient (grad.in.<name>) a backward produces. */
  differentiableInputs: string[];
  params: Map<string, Shape>;
  state: Map<string, Shape>;
  /**
   * The state a file may omit, with the value each tensor then starts from (train-mode layer kinds: PyTorch's init,
   * mean 0 and variance 1); null when a file must hold its state (eval mode, `lm`).
   */
  stateDefault: Map<string, number> | null;
  /** out.* every correct run produces. */
  outputs: Map<string, Shape>;
  /** out.* a run may produce and a fixture may hold (intermediates such as Monet's out.g1, lm's out.logits). */
  optionalOutputs: Map<string, Shape>;
  idx: Map<string, Shape>;
  /** next.* (train mode: the state after the step). */
  next: Map<string, Shape>;
  /**
   * K, the longest reduction in the case: the largest of the token count, every parameter dimension (each is the
   * contracted length of some forward or backward product) and, for BatchNorm over tokens × experts, that count.
   * The f32 tolerance preset scales with √K.
   */
  reduction: number;
}

/** A map of prefixed names from specs. */
export function shapes(prefix: string, specs: Iterable<{ name: string; shape: Shape }>): Map<string, Shape> {
  return new Map([...specs].map((s) => [prefix + s.name, s.shape]));
}

/** The largest dimension of any shape in the maps (≥ 1). */
export function maxDim(...maps: Map<string, Shape>[]): number {
  let k = 1;
  for (const m of maps) for (const s of m.values()) for (const v of s) k = Math.max(k, v);
  return k;
}
