// Fresh parameters for a config: N(0, 0.02) for every weight matrix and embedding (the Hugging Face Llama / Monet
// `_init_weights`, docs/spec.md §1.8), ones for RMSNorm and BatchNorm scales, zeros for biases (incl. Monet's b, b1,
// b2); BatchNorm running mean 0 and variance 1 (PyTorch). Drawn in paramSpecs order from one seeded Rng, in float64, so
// every backend starts from the same numbers (the float32 ones round them).

import { Rng } from './rng.ts';
import { paramSpecs, stateSpecs, type ModelConfig } from './presets.ts';
import type { HostParams } from './checkpoint.ts';

export const INIT_STD = 0.02;

export function initParams(config: ModelConfig, seed: number): { params: HostParams; state: HostParams } {
  const rng = new Rng(seed);
  const params: HostParams = new Map();
  for (const s of paramSpecs(config)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const a = new Float64Array(n); // shape s.shape
    if (s.init === 'ones') a.fill(1);
    else if (s.init === 'normal') for (let i = 0; i < n; i++) a[i] = INIT_STD * rng.normal();
    params.set(s.name, a);
  }
  const state: HostParams = new Map();
  for (const s of stateSpecs(config)) {
    const a = new Float64Array(s.shape.reduce((x, y) => x * y, 1));
    if (s.init === 'ones') a.fill(1);
    state.set(s.name, a);
  }
  return { params, state };
}
