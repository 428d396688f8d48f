// The layout of a single-layer fixture case (every kind but `lm`): in.x and its upstream gradients, parameters,
// state, outputs, routing decisions and the state after a train-mode step.

import { input, type LayoutDecl, type TensorDecl } from './layout-table.ts';
import { maxDim, shapes, type KindLayout, type ParamSpec, type Shape, type StateSpec } from './tensors.ts';

export interface LayerLayoutParts {
  T: number;
  /** in.x's shape. */
  x: Shape;
  /** Upstream gradients (in.dy, or the router's in.dg1, in.dg2), read only by backward. */
  seeds: Array<[string, Shape]>;
  params: Iterable<ParamSpec>;
  state: Iterable<StateSpec>;
  /** BatchNorm mode, for the kinds that have one: next.* exist only after a train-mode step. */
  mode?: 'train' | 'eval';
  outputs: Array<[string, Shape]>;
  optionalOutputs?: Array<[string, Shape]>;
  idx: Array<[string, Shape]>;
  /** A reduction longer than T and every parameter dimension (e.g. BatchNorm over tokens × experts). */
  reduction?: number;
}

export function layerLayout(p: LayerLayoutParts): KindLayout {
  const params = shapes('', p.params);
  const state = [...p.state];
  const stateRel = shapes('', state);
  const inputs = new Map<string, Shape>([['in.x', p.x], ...p.seeds.map(([n, s]): [string, Shape] => [`in.${n}`, s])]);
  return {
    inputs,
    seeds: p.seeds.map(([n]) => `in.${n}`),
    differentiableInputs: ['x'],
    params: new Map([...params].map(([n, s]) => [`param.${n}`, s])),
    state: new Map([...stateRel].map(([n, s]) => [`state.${n}`, s])),
    // A train-mode layer file may omit its state: it starts from PyTorch's init (mean 0, variance 1).
    stateDefault: p.mode === 'train' ? new Map(state.map((s) => [`state.${s.name}`, s.init === 'ones' ? 1 : 0])) : null,
    outputs: new Map(p.outputs),
    optionalOutputs: new Map(p.optionalOutputs ?? []),
    idx: new Map(p.idx),
    // Running statistics change only in train mode; an eval-mode case has no next.* (the state is unchanged).
    next: p.mode === 'train' ? new Map([...stateRel].map(([n, s]) => [`next.${n}`, s])) : new Map(),
    reduction: Math.max(p.T, p.reduction ?? 1, maxDim(params)),
  };
}

/** The same layout as data (src/kinds/layout-table.ts): in.x, its seeds, the kind's tensors, next.* in train mode. */
export interface LayerTableParts {
  /** in.x's shape (expressions over the keys and T). */
  x: (number | string)[];
  seeds: TensorDecl[];
  params: TensorDecl[];
  state?: TensorDecl[];
  outputs: TensorDecl[];
  idx: TensorDecl[];
  /** The sizes that are not config keys (default: T, the first axis of in.x). */
  sizes?: Record<string, string>;
  /** The kind has a BatchNorm `mode`: next.* exist after a train-mode step. */
  modal?: boolean;
}

export function layerTable(p: LayerTableParts): LayoutDecl {
  return {
    sizes: p.sizes ?? { T: 'tokens: the first axis of in.x' },
    tensors: [input('x', p.x, { grad: true }), ...p.seeds, ...p.params, ...(p.state ?? []), ...p.outputs, ...p.idx],
    ...(p.modal ? { next: "mode == 'train'" } : {}),
  };
}
