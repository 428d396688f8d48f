// Opening a finished (or interrupted) run folder for `monet sample` and `monet eval`.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from './checkpoint.ts';
import type { Engine } from './engine.ts';
import { createEngine } from './engines.ts';
import { TRAIN_DEFAULTS, type BackendChoice, type TrainOptions } from './options.ts';
import type { ModelConfig } from './presets.ts';
import { topkAlpha } from './schedule.ts';
import { makeTokenizer, type Tokenizer } from './tokenizer.ts';

export interface OpenRun {
  dir: string;
  config: ModelConfig;
  options: TrainOptions;
  step: number;
  engine: Engine;
  tokenizer: Tokenizer;
  alpha: number; // TopK α at the checkpoint's step
}

/** `threads`: for the wasm backend (default 1). */
export async function openRun(dir: string, backend: BackendChoice, threads?: number): Promise<OpenRun> {
  if (!existsSync(dir)) throw new Error(`run folder ${dir} does not exist`);
  const { config, tokenizer, params, state } = loadModel(dir);
  let options: TrainOptions = { ...TRAIN_DEFAULTS, name: dir };
  let step = 0;
  const runJson = join(dir, 'run.json');
  if (existsSync(runJson)) {
    let r: { options?: TrainOptions; step?: number };
    try {
      r = JSON.parse(readFileSync(runJson, 'utf8'));
    } catch (e) {
      throw new Error(
        `${runJson} is not valid JSON (${(e as Error).message}); expected the run summary monet train writes`,
      );
    }
    if (r === null || typeof r !== 'object')
      throw new Error(`${runJson}: expected a JSON object (the run summary), found ${r === null ? 'null' : typeof r}`);
    if (r.options && typeof r.options === 'object') options = { ...TRAIN_DEFAULTS, ...r.options };
    step = Number.isInteger(r.step) && (r.step as number) >= 0 ? (r.step as number) : 0;
  }
  const { engine } = await createEngine(backend, { config, params, state }, { threads });
  return {
    dir,
    config,
    options,
    step,
    engine,
    tokenizer: makeTokenizer(tokenizer),
    alpha: topkAlpha(options.topkAnneal, options.steps, step),
  };
}
