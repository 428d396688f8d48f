// The size of a model from its config in closed form: parameter values and tensors, counted per class of layer,
// never listing every expert of every layer (an SMoE with 65,536 experts in 4,096 layers has 805 million tensors,
// which no JS heap holds). Browser-safe: the model-file reader (src/train/run-files.ts) compares it with what a
// model.safetensors holds before it lists any tensor.

import type { LmConfig } from '../../reference/lm.ts';
import { ffnParams, ffnState } from '../kinds/lm.ts';

/** Layers that list the same feed-forward tensors (all, but PEER's dense layers and Monet's router-less ones). */
function layerClass(c: LmConfig, i: number): string {
  const f = c.ffn;
  if (f.kind === 'peer') return f.layers.includes(i) ? 'peer' : 'dense';
  if (f.kind === 'monet') return i % f.groups === 0 ? 'router' : 'experts';
  return 'all';
}

/** Parameter values and tensors, counted per class of layer (never listing every expert of every layer). */
export function modelSize(c: LmConfig): { params: number; tensors: number; stateTensors: number } {
  const { V, d, L, nH, nKV, hd } = c;
  let params = V * d + d + (c.tied ? 0 : V * d);
  let tensors = 2 + (c.tied ? 0 : 1);
  let stateTensors = 0;
  const perClass = new Map<string, { params: number; tensors: number; state: number }>();
  for (let i = 0; i < L; i++) {
    const cls = layerClass(c, i);
    let ffn = perClass.get(cls);
    if (!ffn) {
      const specs = ffnParams(c, i);
      const params = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
      ffn = { params, tensors: specs.length, state: ffnState(c, i).length };
      perClass.set(cls, ffn);
    }
    params += 2 * d + 2 * nH * hd * d + 2 * nKV * hd * d + ffn.params;
    tensors += 6 + ffn.tensors;
    stateTensors += ffn.state;
  }
  return { params, tensors, stateTensors };
}
