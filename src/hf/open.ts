// Opening a downloaded MonetLLM folder for `monet sample|eval|chat` (Node): weights onto the chosen backend for
// inference only, the tokenizer read when text is involved.

import type { Engine } from '../train/engine.ts';
import { createEngine } from '../train/engines.ts';
import type { BackendChoice } from '../train/options.ts';
import type { ModelConfig } from '../train/presets.ts';
import { DirSource } from './dir-source.ts';
import { loadHfModel } from './folder.ts';
import { loadHfTokenizer, type HfTokenizer } from './tokenizer.ts';

export interface OpenHf {
  dir: string;
  config: ModelConfig;
  engine: Engine;
  eos: number[];
  bos: number | null;
  notes: string[];
  dtypes: Record<string, number>;
  loadSeconds: number;
  /** The folder's tokenizer (read on first use; an error names what is missing). */
  tokenizer(): Promise<HfTokenizer>;
}

/** wasm32 addresses 4 GiB: the weights (bf16 matrices, float32 rest) and the activations share it. */
const WASM_BYTES = 4 * 1024 ** 3;

/** `threads`: for the wasm backend (default 1). */
export async function openHf(dir: string, backend: BackendChoice, threads?: number): Promise<OpenHf> {
  const src = new DirSource(dir);
  const t0 = performance.now();
  // BF16 matrices stay 16-bit on the device backends (widened inside the forward); the float64 reference widens all.
  const m = await loadHfModel(src, { keep16: backend !== 'reference' });
  let n = 0;
  let bytes = 0;
  for (const a of m.params.values()) {
    n += a.length;
    bytes += 4 * a.length;
  }
  for (const a of m.packed.values()) {
    n += a.length;
    bytes += 2 * a.length;
  }
  if (backend === 'wasm' && bytes > WASM_BYTES * 0.9)
    throw new Error(
      `${dir}: ${(n / 1e9).toFixed(2)}B parameters take ${(bytes / 1024 ** 3).toFixed(1)} GiB, more than ` +
        "the WASM backend's 4 GiB address space; use --backend webgpu (or a smaller model)",
    );
  const { engine } = await createEngine(
    backend,
    { config: m.config, params: m.params, state: m.state, packed: m.packed, inferenceOnly: true },
    { threads },
  );
  // The backend holds its own copy now; drop the host one (for a 1.4B model that is 5.9 GB of float32).
  m.params.clear();
  m.packed.clear();
  m.state.clear();
  const loadSeconds = (performance.now() - t0) / 1000;
  let tok: HfTokenizer | null = null;
  return {
    dir,
    config: m.config,
    engine,
    eos: m.eos,
    bos: m.bos,
    notes: m.notes,
    dtypes: m.dtypes,
    loadSeconds,
    async tokenizer() {
      tok ??= await loadHfTokenizer(src);
      if (tok.vocabSize > m.config.vocab_size)
        throw new Error(
          `${src.where('tokenizer.json')}: the tokenizer has ${tok.vocabSize} tokens ` +
            `but config.json vocab_size is ${m.config.vocab_size}`,
        );
      return tok;
    },
  };
}
