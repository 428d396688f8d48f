// Run-folder checkpoints.
//
//   runs/<name>/model.safetensors    parameters under their Hugging Face / Monet names (names.md), plus the
//                                    BatchNorm running statistics as HF stores buffers (`model.layers.0.router.norm1.
//                                    running_mean`, i.e. our `state.` name without the prefix)
//   runs/<name>/config.json          the `lm` model config (FIXTURES.md keys) + tokenizer
//   runs/<name>/trainer_state.safetensors   AdamW moments `exp_avg.<name>` / `exp_avg_sq.<name>`; metadata: step,
//                                    the data sampler's RNG state and batch count, the sampling RNG, the options
//
// Everything is written atomically (src/train/atomic.ts): a crash leaves the previous checkpoint intact.
// Storage dtype: F32 for the wasm/webgpu backends, F64 for the reference backend (what the run computed in).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors } from '../safetensors.ts';
import type { Tensor, TensorMap } from '../tensor.ts';
import { writeFileAtomic } from './atomic.ts';
import { paramSpecs, stateSpecs, validateConfig, type ModelConfig } from './presets.ts';

export type HostArray = Float32Array | Float64Array;
export type HostParams = Map<string, HostArray>;

export const CHECKPOINT_FORMAT = 'monet-ts-checkpoint/1';
export const TRAINER_STATE_FORMAT = 'monet-ts-trainer-state/1';

export interface RunConfigFile extends ModelConfig {
  tokenizer: string;
  monet_ts_format: string;
}

function tensorOf(shape: number[], data: HostArray): Tensor {
  return { dtype: data instanceof Float64Array ? 'F64' : 'F32', shape, data };
}

/** The checkpoint name of a state tensor: `state.model.layers.0.router.norm1.running_mean` → without `state.`. */
export function stateCheckpointName(stateName: string): string {
  return stateName.startsWith('state.') ? stateName.slice(6) : stateName;
}

export function saveModel(dir: string, config: ModelConfig, tokenizer: string, params: HostParams, state: HostParams): void {
  const tensors: TensorMap = new Map();
  for (const s of paramSpecs(config)) {
    const a = params.get(s.name);
    if (!a) throw new Error(`checkpoint: parameter '${s.name}' is missing from the model being saved`);
    tensors.set(s.name, tensorOf(s.shape, a));
  }
  for (const s of stateSpecs(config)) {
    const a = state.get(s.name);
    if (!a) throw new Error(`checkpoint: state '${s.name}' is missing from the model being saved`);
    tensors.set(stateCheckpointName(s.name), tensorOf(s.shape, a));
  }
  const cfg: RunConfigFile = { ...config, tokenizer, monet_ts_format: CHECKPOINT_FORMAT };
  // config.json first: a model file is only ever read together with a config that describes it.
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  writeFileAtomic(join(dir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt', monet_ts_format: CHECKPOINT_FORMAT }));
}

export function readConfig(dir: string): { config: ModelConfig; tokenizer: string } {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new Error(`checkpoint: ${path} does not exist (expected a run folder written by monet train)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`checkpoint: ${path} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`checkpoint: ${path} must hold a JSON object`);
  const { tokenizer, monet_ts_format, ...rest } = raw as Record<string, unknown>;
  void monet_ts_format;
  const config = rest as unknown as ModelConfig;
  try {
    validateConfig(config);
  } catch (e) {
    throw new Error(`checkpoint: ${path}: ${(e as Error).message}`);
  }
  return { config, tokenizer: typeof tokenizer === 'string' ? tokenizer : 'bytes' };
}

/** Load parameters and state, checking every name and shape against the config. Values keep their stored dtype. */
export function loadModel(dir: string): { config: ModelConfig; tokenizer: string; params: HostParams; state: HostParams } {
  const { config, tokenizer } = readConfig(dir);
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path)) throw new Error(`checkpoint: ${path} does not exist`);
  const { tensors } = parseSafetensors(readFileSync(path), path);
  const params: HostParams = new Map();
  const state: HostParams = new Map();
  const seen = new Set<string>();
  const take = (name: string, shape: number[], where: string): HostArray => {
    const t = tensors.get(name);
    if (!t) throw new Error(`checkpoint: ${path} has no tensor '${name}' (${where} of a ${config.ffn} model per config.json)`);
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new Error(`checkpoint: ${path}: tensor '${name}' has shape [${t.shape}], config.json implies [${shape}]`);
    }
    if (t.dtype !== 'F32' && t.dtype !== 'F64') throw new Error(`checkpoint: ${path}: tensor '${name}' is ${t.dtype}; expected F32 or F64`);
    seen.add(name);
    return t.data as HostArray;
  };
  for (const s of paramSpecs(config)) params.set(s.name, take(s.name, s.shape, 'a parameter'));
  for (const s of stateSpecs(config)) state.set(s.name, take(stateCheckpointName(s.name), s.shape, 'BatchNorm state'));
  const extra = [...tensors.keys()].filter((n) => !seen.has(n));
  if (extra.length > 0) throw new Error(`checkpoint: ${path} holds tensors that config.json does not describe: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  return { config, tokenizer, params, state };
}

export interface TrainerState {
  step: number; // optimizer steps completed
  sampler: { rng: [number, number, number, number]; batches: number };
  /** Free-form: the training options, elapsed time, best validation loss, … (JSON). */
  info: Record<string, unknown>;
  m: HostParams; // AdamW first moments, by parameter name
  v: HostParams; // AdamW second moments
}

export function saveTrainerState(dir: string, config: ModelConfig, st: TrainerState): void {
  const tensors: TensorMap = new Map();
  for (const s of paramSpecs(config)) {
    const m = st.m.get(s.name);
    const v = st.v.get(s.name);
    if (!m || !v) throw new Error(`trainer state: moments of '${s.name}' are missing`);
    tensors.set(`exp_avg.${s.name}`, tensorOf(s.shape, m));
    tensors.set(`exp_avg_sq.${s.name}`, tensorOf(s.shape, v));
  }
  const meta = {
    format: TRAINER_STATE_FORMAT,
    step: String(st.step),
    sampler: JSON.stringify(st.sampler),
    info: JSON.stringify(st.info),
  };
  writeFileAtomic(join(dir, 'trainer_state.safetensors'), serializeSafetensors(tensors, meta));
}

export function loadTrainerState(dir: string, config: ModelConfig): TrainerState {
  const path = join(dir, 'trainer_state.safetensors');
  if (!existsSync(path)) throw new Error(`trainer state: ${path} does not exist (a run folder without it can be sampled and evaluated, not resumed)`);
  const { metadata, tensors } = parseSafetensors(readFileSync(path), path);
  if (metadata.format !== TRAINER_STATE_FORMAT) throw new Error(`trainer state: ${path}: format is ${JSON.stringify(metadata.format)}, this version reads '${TRAINER_STATE_FORMAT}'`);
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`trainer state: ${path}: metadata step must be a non-negative integer, found ${JSON.stringify(metadata.step)}`);
  let sampler: TrainerState['sampler'];
  let info: Record<string, unknown>;
  try {
    sampler = JSON.parse(metadata.sampler ?? '');
    info = JSON.parse(metadata.info ?? '{}');
  } catch (e) {
    throw new Error(`trainer state: ${path}: metadata sampler/info is not valid JSON (${(e as Error).message})`);
  }
  if (!sampler || !Array.isArray(sampler.rng) || sampler.rng.length !== 4 || !Number.isInteger(sampler.batches)) {
    throw new Error(`trainer state: ${path}: metadata sampler must be {rng: [4 uint32], batches: int}, found ${metadata.sampler}`);
  }
  const m: HostParams = new Map();
  const v: HostParams = new Map();
  for (const s of paramSpecs(config)) {
    for (const [prefix, dst] of [['exp_avg.', m], ['exp_avg_sq.', v]] as const) {
      const t = tensors.get(prefix + s.name);
      if (!t) throw new Error(`trainer state: ${path} has no tensor '${prefix}${s.name}'`);
      if (t.shape.join(',') !== s.shape.join(',')) throw new Error(`trainer state: ${path}: '${prefix}${s.name}' has shape [${t.shape}], expected [${s.shape}]`);
      if (t.dtype !== 'F32' && t.dtype !== 'F64') throw new Error(`trainer state: ${path}: '${prefix}${s.name}' is ${t.dtype}; expected F32 or F64`);
      dst.set(s.name, t.data as HostArray);
    }
  }
  return { step, sampler, info, m, v };
}
