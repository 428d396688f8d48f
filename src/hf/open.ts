// Opening a downloaded MonetLLM folder for `monet sample|eval|chat` (Node): weights onto the chosen backend for
// inference only, the tokenizer read when text is involved.

import type { Engine } from '../train/engine.ts';
import { createEngine } from '../train/engines.ts';
import type { BackendChoice } from '../train/options.ts';
import type { ModelConfig } from '../train/presets.ts';
import { DirSource } from './dir-source.ts';
import { loadHfModel, planHfModel, readHfTensors, tooLargeForWasm } from './folder.ts';
import { loadHfTokenizer, type HfTokenizer } from './tokenizer.ts';
import { loadSentencePiece } from './tokenizer-spm.ts';

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

/** `threads`: for the wasm backend (default 1). */
export async function openHf(dir: string, backend: BackendChoice, threads?: number): Promise<OpenHf> {
  const src = new DirSource(dir);
  const t0 = performance.now();
  // BF16 matrices stay 16-bit on the device backends (read in place by the forward); the float64 reference widens
  // all of them.
  const plan = await planHfModel(src, { keep16: backend !== 'reference' });
  const tooLarge = backend === 'wasm' ? tooLargeForWasm(plan) : null;
  if (tooLarge) throw new Error(`${tooLarge} (--backend webgpu)`);
  const init = { config: plan.config, params: new Map(), state: new Map(), inferenceOnly: true };
  let engine: Engine;
  if (backend === 'reference') {
    // the reference engine takes host maps (tiny models only)
    const m = await loadHfModel(src, { keep16: false });
    ({ engine } = await createEngine(backend, { ...init, params: m.params, state: m.state }));
  } else {
    // the device backends upload each tensor as it is read: the host never holds the whole model
    ({ engine } = await createEngine(backend, { ...init, stream: () => readHfTensors(plan) }, { threads }));
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  let tok: HfTokenizer | null = null;
  return {
    dir,
    config: plan.config,
    engine,
    eos: plan.eos,
    bos: plan.bos,
    notes: plan.notes,
    dtypes: plan.dtypes,
    loadSeconds,
    async tokenizer() {
      tok ??= await loadHfTokenizer(src, { sentencePiece: loadSentencePiece });
      if (tok.vocabSize > plan.config.vocab_size)
        throw new Error(
          `${tok.where}: the tokenizer has ${tok.vocabSize} tokens ` +
            `but config.json vocab_size is ${plan.config.vocab_size}`,
        );
      return tok;
    },
  };
}
