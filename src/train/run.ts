// Opening a finished (or interrupted) run folder for `monet sample` and `monet eval`, and reading its run.json.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSealedJson, sealedJson } from '../validate.ts';
import { writeFileAtomic } from './atomic.ts';
import { loadModel } from './checkpoint.ts';
import type { Engine } from './engine.ts';
import { createEngine } from './engines.ts';
import { checkMemory } from './memory.ts';
import { TRAIN_DEFAULTS, type BackendChoice, type TrainOptions, validateSavedOptions } from './options.ts';
import type { ModelConfig } from './presets.ts';
import { topkAlpha } from './schedule.ts';
import { makeTokenizer, type Tokenizer } from './tokenizer.ts';

export interface OpenRun {
  dir: string;
  config: ModelConfig;
  options: TrainOptions;
  /** Whether the options came from the run's run.json (false: a folder without one; defaults). */
  hasRunJson: boolean;
  step: number;
  engine: Engine;
  tokenizer: Tokenizer;
  alpha: number; // TopK α at the checkpoint's step
  /** What a folder written by another tool lacks (a checksum), for the caller to print. */
  warnings: string[];
}

/** run.json as monet train writes it: the options, the model config, the step of the last checkpoint. */
export interface RunJson {
  options: TrainOptions;
  config: Record<string, unknown>;
  step: number;
}

/**
 * Read and check a run's run.json: its checksum (every byte: a hand edit is refused like damage), then each value —
 * the options as strictly as flags (src/train/options.ts), the step a non-negative integer, the config an object.
 * Returns null when the folder has no run.json.
 */
export function readRunJson(dir: string): RunJson | null {
  const path = join(dir, 'run.json');
  if (!existsSync(path)) return null;
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path} (${(e as Error).message})`);
  }
  const { value } = parseSealedJson(bytes, path, 'own', 'the run summary monet train writes');
  const options = validateSavedOptions(value.options, `${path}: options`);
  const step = value.step;
  if (!Number.isSafeInteger(step) || (step as number) < 0)
    throw new Error(`${path}: 'step' must be an integer ≥ 0 (the last checkpoint's step), found ${String(step)}`);
  const config = value.config;
  if (config === null || typeof config !== 'object' || Array.isArray(config))
    throw new Error(`${path}: 'config' must be the run's model config (an object)`);
  return { options, config: config as Record<string, unknown>, step: step as number };
}

/** Write a run.json (sealed with its checksum) — what monet train writes at each checkpoint; tests use it too. */
export function writeRunJson(
  dir: string,
  r: { options: TrainOptions; config: ModelConfig; step: number; [more: string]: unknown },
): void {
  writeFileAtomic(join(dir, 'run.json'), sealedJson(r));
}

/** What the opened run will do, for the memory check: evaluate its validation batches, or sample `tokens`. */
export type RunUse = { purpose: 'eval' } | { purpose: 'sample'; tokens: number };

/** `threads`: for the wasm backend (default 1). */
export async function openRun(
  dir: string,
  backend: BackendChoice,
  threads?: number,
  use: RunUse = { purpose: 'eval' },
): Promise<OpenRun> {
  if (!existsSync(dir)) throw new Error(`run folder ${dir} does not exist`);
  const { config, tokenizer, params, state, warnings, step: modelStep } = loadModel(dir);
  const saved = readRunJson(dir);
  if (saved) {
    // run.json and config.json are written by the same run: a folder that mixes two runs is refused.
    if (JSON.stringify(saved.config) !== JSON.stringify(config))
      throw new Error(
        `${join(dir, 'run.json')} describes another model than ${join(dir, 'config.json')}: the folder mixes files ` +
          'of two runs',
      );
  }
  const options = saved?.options ?? { ...TRAIN_DEFAULTS, name: dir };
  // The model's own step wins: a crash between a checkpoint's commit and its run.json leaves run.json one behind.
  const step = modelStep ?? saved?.step ?? 0;
  // A hand-edited config (a longer context, a bigger batch in run.json) must not exhaust memory in the engine.
  checkMemory(config, {
    purpose: use.purpose,
    backend,
    batch: use.purpose === 'eval' ? options.batchSize : 1,
    seq: Math.min(config.max_position_embeddings, use.purpose === 'eval' ? options.seqLen : use.tokens + 2),
  });
  const { engine } = await createEngine(backend, { config, params, state }, { threads });
  return {
    dir,
    config,
    options,
    hasRunJson: saved !== null,
    step,
    engine,
    tokenizer: makeTokenizer(tokenizer),
    alpha: topkAlpha(options.topkAnneal, options.steps, step),
    warnings,
  };
}
