// Shared plumbing for the reference layers: the parameter-record type, config readers and the fixture-case helpers
// every `run<Kind>Case` uses (shape-checked tensor access, gradInit accumulation, clear errors).
// Nothing numerical lives here.

import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import { asF64, asI32, f64, numel, type Tensor, type TensorMap } from '../src/tensor.ts';

/** Parameters (or their gradients) keyed by name, e.g. `up_proj.weight` → (F, d) row-major. */
export type Params = Record<string, Float64Array>;

/** A parameter's name, shape and how a fresh model initialises it. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'ones' | 'zeros';
}

/** A zeroed gradient record with the same names and sizes as `params`. */
export function zerosLike(params: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) out[k] = new Float64Array(v.length);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Config readers. `where` names the place (fixture file and kind) so that errors say where the bad key is.

export type Config = Record<string, unknown>;

export function cfgInt(config: Config, key: string, where: string, min = 1, dflt?: number): number {
  const v = config[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
    throw new Error(`${where}: config.${key}: expected an integer ≥ ${min}, found ${JSON.stringify(config[key])}`);
  return v;
}

export function cfgNum(config: Config, key: string, where: string, dflt?: number): number {
  const v = config[key] ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new Error(`${where}: config.${key}: expected a finite number, found ${JSON.stringify(config[key])}`);
  return v;
}

export function cfgEnum<T extends string>(
  config: Config,
  key: string,
  allowed: readonly T[],
  where: string,
  dflt?: T,
): T {
  const v = config[key] ?? dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw new Error(
      `${where}: config.${key}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, found ${JSON.stringify(config[key])}`,
    );
  return v as T;
}

export function cfgBool(config: Config, key: string, where: string, dflt?: boolean): boolean {
  const v = config[key] ?? dflt;
  if (typeof v !== 'boolean')
    throw new Error(`${where}: config.${key}: expected true or false, found ${JSON.stringify(config[key])}`);
  return v;
}

/** `config.aux` as {name: coefficient} with exactly the given names, all finite numbers. */
export function cfgAux(config: Config, names: readonly string[], where: string): Record<string, number> {
  const aux = config.aux;
  if (typeof aux !== 'object' || aux === null || Array.isArray(aux))
    throw new Error(
      `${where}: config.aux: expected an object {${names.map((n) => `${n}: number`).join(', ')}}, found ${JSON.stringify(aux)}`,
    );
  const out: Record<string, number> = {};
  for (const n of names) {
    const v = (aux as Config)[n];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(
        `${where}: config.aux.${n}: expected a finite number (the loss coefficient), found ${JSON.stringify(v)}`,
      );
    out[n] = v;
  }
  for (const k of Object.keys(aux))
    if (!names.includes(k))
      throw new Error(`${where}: config.aux.${k}: unknown aux loss; expected only ${names.join(', ')}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Fixture-case tensor access.

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Shape-checked access to a case's in./param./state. tensors. `unused()` lists the ones nobody asked for, so a
 * runner can refuse a misnamed parameter instead of silently ignoring it.
 */
export class CaseInputs {
  readonly where: string;
  private readonly used = new Set<string>();
  constructor(readonly c: FixtureCase) {
    this.where = `${c.source ?? '(in-memory case)'} [kind ${c.kind}]`;
  }

  has(name: string): boolean {
    return this.c.tensors.has(name);
  }

  private get(name: string, shape: readonly number[]): Tensor {
    const t = this.c.tensors.get(name);
    if (!t) throw new Error(`${this.where}: missing tensor ${name} (expected shape [${shape}])`);
    if (!sameShape(t.shape, shape) && !(numel(shape) === 1 && numel(t.shape) === 1 && t.shape.length <= 1))
      throw new Error(`${this.where}: tensor ${name}: expected shape [${shape}], found [${t.shape}]`);
    this.used.add(name);
    return t;
  }

  /** A real tensor as float64 (F64 shared, F32 copied). Never written to. */
  f64(name: string, shape: readonly number[]): Float64Array {
    return asF64(this.get(name, shape), `${this.where}: ${name}`);
  }

  /** An integer tensor (I32/I64) as int32. */
  i32(name: string, shape: readonly number[]): Int32Array {
    return asI32(this.get(name, shape), `${this.where}: ${name}`);
  }

  /** Shape of a tensor the runner needs to size itself from, or an error naming it. */
  shapeOf(name: string): number[] {
    const t = this.c.tensors.get(name);
    if (!t) throw new Error(`${this.where}: missing tensor ${name}`);
    return t.shape;
  }

  /** Throws if the case holds in./param./state. tensors that the runner never read. */
  assertAllUsed(): void {
    const extra = [...this.c.tensors.keys()].filter((k) => /^(in|param|state)\./.test(k) && !this.used.has(k));
    if (extra.length) throw new Error(`${this.where}: unexpected tensors for this kind/config: ${extra.join(', ')}`);
  }
}

/** A gradient buffer for output `name` (e.g. `grad.param.up_proj.weight`): gradInit's values if given, else zeros. */
export function gradBuffer(opts: RunOptions | undefined, name: string, shape: readonly number[]): Float64Array {
  const buf = new Float64Array(numel(shape));
  const init = opts?.gradInit?.get(name);
  if (init) {
    if (!sameShape(init.shape, shape))
      throw new Error(`gradInit ${name}: expected shape [${shape}], found [${init.shape}]`);
    buf.set(asF64(init, `gradInit ${name}`));
  }
  return buf;
}

/** Put a float64 result into the output map (0-d when shape is []). */
export function put(out: TensorMap, name: string, shape: number[], data: ArrayLike<number>): void {
  out.set(name, f64(shape, data));
}

/** Param record (names without `param.`) read from a case, shape-checked against specs. */
export function readParams(inp: CaseInputs, specs: readonly ParamSpec[], prefix = 'param.'): Params {
  const p: Params = {};
  for (const s of specs) p[s.name] = inp.f64(prefix + s.name, s.shape);
  return p;
}

/** Gradient record for specs, pre-filled from opts.gradInit under `grad.param.<name>`. */
export function gradParams(opts: RunOptions | undefined, specs: readonly ParamSpec[]): Params {
  const g: Params = {};
  for (const s of specs) g[s.name] = gradBuffer(opts, `grad.param.${s.name}`, s.shape);
  return g;
}

/** Writes every gradient of `g` as `grad.param.<name>` with its spec's shape. */
export function putGrads(out: TensorMap, specs: readonly ParamSpec[], g: Params): void {
  for (const s of specs) put(out, `grad.param.${s.name}`, s.shape, g[s.name]);
}
