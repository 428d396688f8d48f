// The one interface through which every backend (reference, wasm, webgpu) runs a fixture case.
//
// A case is one layer (or one whole LM) with its inputs, parameters and state, exactly as a fixture file stores
// them (see docs/fixtures.md). A backend runs forward and backward and returns what a fixture's expected half holds:
//   out.*   outputs (out.y, aux losses as 0-d tensors, out.loss for models, optional intermediates)
//   grad.*  gradients of the objective w.r.t. in.* / param.* (e.g. grad.in.x, grad.param.w1.weight)
//   idx.*   discrete routing decisions (indices I32, masks U8)
//   next.*  state after the step (e.g. BatchNorm running stats)
// Objective, unless the fixture says otherwise: L = Σ(out.y ⊙ in.dy) + Σ_name coef_name · out.<aux name>, with
// coefficients in config.aux; for kind `lm`, L = out.loss (which already holds the configured aux terms).
//
// Gradient accumulation rule (llm.c's): backward ADDS into gradient buffers and the caller zeroes them. A caller may
// pass `gradInit` (same names as the grad.* outputs); the returned grad.* are then gradInit + ∂L/∂·.

import type { TensorMap } from '../tensor.ts';

export interface FixtureCase {
  kind: string;
  config: Record<string, unknown>;
  /** in.*, param.*, state.* tensors. */
  tensors: TensorMap;
  /** Where the case came from (a file path), for error messages. */
  source?: string;
}

export interface RunOptions {
  /** Pre-filled gradient buffers; backends add to them. */
  gradInit?: TensorMap;
  /** Skip backward (forward-only fixtures). */
  forwardOnly?: boolean;
}

export interface CaseBackend {
  readonly name: string;
  /** Kinds this backend can run; the checker reports the others as unsupported, never as passed. */
  supports(kind: string): boolean;
  run(c: FixtureCase, opts?: RunOptions): Promise<TensorMap>;
  dispose?(): void | Promise<void>;
}
