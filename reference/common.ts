// The record type the reference layers pass parameters and gradients in. Nothing numerical lives here.

/** Parameters (or their gradients) keyed by name, e.g. `up_proj.weight` → (F, d) row-major. */
export type Params = Record<string, Float64Array>;

/** A zeroed gradient record with the same names and sizes as `params`. */
export function zerosLike(params: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(params)) out[k] = new Float64Array(v.length);
  return out;
}
