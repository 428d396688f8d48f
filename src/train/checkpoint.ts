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
//
// Integrity (docs/robustness.md): both safetensors files carry a CRC-32 of their tensors in the metadata
// (`monet_ts_checksum`, src/validate.ts), verified on every load. The trainer state also records the checksum of the
// model it belongs to and the step. A checkpoint is two files, and two renames cannot happen at once, so
// saveCheckpoint commits in two phases: both new files are first written completely as `.<name>.pending`, then
// trainer_state is renamed into place (the commit point: it names the pending model by checksum), then the model.
// A crash between the renames leaves a committed trainer state and a pending model that matches it, and
// recoverCheckpoint (run before a resume) finishes the commit; a crash before the first rename leaves the previous
// checkpoint, and the stale pending files are removed.

import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { serializeSafetensors, type SafetensorsContents } from '../safetensors.ts';
import type { Tensor, TensorMap } from '../tensor.ts';
import { jsonDepth, parseCheckpointBytes, withChecksum } from '../validate.ts';
import { AtomicWriteError, fsOps, syncDir, writeFileAtomic } from './atomic.ts';
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

/** The model file's bytes and checksum (tensors in paramSpecs order, then the BN buffers). */
function modelBytes(
  config: ModelConfig,
  params: HostParams,
  state: HostParams,
  step?: number,
): { bytes: Uint8Array; checksum: string } {
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
  const meta = withChecksum(tensors, {
    format: 'pt',
    monet_ts_format: CHECKPOINT_FORMAT,
    ...(step !== undefined ? { monet_ts_step: String(step) } : {}),
  });
  return { bytes: serializeSafetensors(tensors, meta), checksum: meta.monet_ts_checksum };
}

function writeConfig(dir: string, config: ModelConfig, tokenizer: string): void {
  const cfg: RunConfigFile = { ...config, tokenizer, monet_ts_format: CHECKPOINT_FORMAT };
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
}

/** Writes config.json and model.safetensors (atomically, each); returns the model's checksum. */
export function saveModel(
  dir: string,
  config: ModelConfig,
  tokenizer: string,
  params: HostParams,
  state: HostParams,
): string {
  const { bytes, checksum } = modelBytes(config, params, state);
  // config.json first: a model file is only ever read together with a config that describes it.
  writeConfig(dir, config, tokenizer);
  writeFileAtomic(join(dir, 'model.safetensors'), bytes);
  return checksum;
}

/** Read a checkpoint file this project wrote: container checks (src/safetensors.ts) + checksum. */
function readCheckpointFile(path: string, what: string): SafetensorsContents & { checksum: string | null } {
  if (!existsSync(path)) throw new Error(`${what}: ${path} does not exist`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
  return parseCheckpointBytes(bytes, path);
}

export function readConfig(dir: string): { config: ModelConfig; tokenizer: string } {
  const path = join(dir, 'config.json');
  if (!existsSync(path))
    throw new Error(`checkpoint: ${path} does not exist (expected a run folder written by monet train)`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`checkpoint: ${path} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`checkpoint: ${path} must hold a JSON object`);
  // A config is flat (only aux and peer_layers nest, one level); refuse deep nesting before anything walks it.
  const depth = jsonDepth(raw, 3);
  if (depth > 3)
    throw new Error(
      `checkpoint: ${path} nests values more than 3 levels deep; expected a flat model config (only 'aux' and 'peer_layers' hold an object or a list)`,
    );
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
export function loadModel(dir: string): {
  config: ModelConfig;
  tokenizer: string;
  params: HostParams;
  state: HostParams;
  checksum: string | null;
  step?: number;
} {
  const { config, tokenizer } = readConfig(dir);
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path) && existsSync(join(dir, PENDING_MODEL))) {
    throw new Error(
      `checkpoint: ${path} does not exist yet: the commit of the run's first checkpoint was interrupted; monet train --resume finishes it`,
    );
  }
  const { tensors, checksum, metadata } = readCheckpointFile(path, 'checkpoint');
  const params: HostParams = new Map();
  const state: HostParams = new Map();
  const seen = new Set<string>();
  const take = (name: string, shape: number[], where: string): HostArray => {
    const t = tensors.get(name);
    if (!t)
      throw new Error(
        `checkpoint: ${path} has no tensor '${name}' (${where} of a ${config.ffn} model per config.json)`,
      );
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new Error(`checkpoint: ${path}: tensor '${name}' has shape [${t.shape}], config.json implies [${shape}]`);
    }
    if (t.dtype !== 'F32' && t.dtype !== 'F64')
      throw new Error(`checkpoint: ${path}: tensor '${name}' is ${t.dtype}; expected F32 or F64`);
    seen.add(name);
    return t.data as HostArray;
  };
  for (const s of paramSpecs(config)) params.set(s.name, take(s.name, s.shape, 'a parameter'));
  for (const s of stateSpecs(config)) state.set(s.name, take(stateCheckpointName(s.name), s.shape, 'BatchNorm state'));
  const extra = [...tensors.keys()].filter((n) => !seen.has(n));
  if (extra.length > 0)
    throw new Error(
      `checkpoint: ${path} holds tensors that config.json does not describe: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`,
    );
  const step = metadata.monet_ts_step !== undefined ? Number(metadata.monet_ts_step) : undefined;
  return { config, tokenizer, params, state, checksum, step };
}

export interface TrainerState {
  step: number; // optimizer steps completed
  sampler: { rng: [number, number, number, number]; batches: number };
  /** Free-form: the training options, elapsed time, best validation loss, … (JSON). */
  info: Record<string, unknown>;
  m: HostParams; // AdamW first moments, by parameter name
  v: HostParams; // AdamW second moments
  /** Checksum of the model.safetensors this state belongs to (absent in files written before checksums). */
  modelChecksum?: string;
}

function trainerStateBytes(config: ModelConfig, st: TrainerState): Uint8Array {
  const tensors: TensorMap = new Map();
  for (const s of paramSpecs(config)) {
    const m = st.m.get(s.name);
    const v = st.v.get(s.name);
    if (!m || !v) throw new Error(`trainer state: moments of '${s.name}' are missing`);
    tensors.set(`exp_avg.${s.name}`, tensorOf(s.shape, m));
    tensors.set(`exp_avg_sq.${s.name}`, tensorOf(s.shape, v));
  }
  const meta: Record<string, string> = {
    format: TRAINER_STATE_FORMAT,
    step: String(st.step),
    sampler: JSON.stringify(st.sampler),
    info: JSON.stringify(st.info),
  };
  if (st.modelChecksum) meta.model_checksum = st.modelChecksum;
  return serializeSafetensors(tensors, withChecksum(tensors, meta));
}

export function saveTrainerState(dir: string, config: ModelConfig, st: TrainerState): void {
  writeFileAtomic(join(dir, 'trainer_state.safetensors'), trainerStateBytes(config, st));
}

const PENDING_MODEL = '.model.safetensors.pending';
const PENDING_STATE = '.trainer_state.safetensors.pending';

/** A checkpoint could not be written; the previous one (if any) is intact. */
export class CheckpointWriteError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'CheckpointWriteError';
  }
}

/**
 * Write a whole checkpoint (config.json, model.safetensors, trainer_state.safetensors) so that a crash or a failed
 * write at any point leaves a consistent checkpoint: the previous one, or the new one (see the file comment).
 */
export function saveCheckpoint(
  dir: string,
  config: ModelConfig,
  tokenizer: string,
  params: HostParams,
  state: HostParams,
  st: TrainerState,
): void {
  const model = modelBytes(config, params, state, st.step);
  const trainer = trainerStateBytes(config, { ...st, modelChecksum: model.checksum });
  const pm = join(dir, PENDING_MODEL);
  const ps = join(dir, PENDING_STATE);
  // What a failed write leaves to resume from: the previous checkpoint, if the run has committed one.
  const previous = existsSync(join(dir, 'trainer_state.safetensors'))
    ? `The previous checkpoint in ${dir} is intact (resume from it with --resume)`
    : `There is no earlier checkpoint in ${dir} to resume from`;
  try {
    writeConfig(dir, config, tokenizer); // the same content at every checkpoint of a run
    writeFileAtomic(pm, model.bytes);
    writeFileAtomic(ps, trainer);
  } catch (e) {
    for (const p of [pm, ps]) {
      try {
        fsOps.unlinkSync(p);
      } catch {
        // not written yet
      }
    }
    const why = e instanceof AtomicWriteError ? e.message : (e as Error).message;
    throw new CheckpointWriteError(`checkpoint of step ${st.step} not written: ${why}. ${previous}`, e);
  }
  try {
    fsOps.renameSync(ps, join(dir, 'trainer_state.safetensors')); // commit point
  } catch (e) {
    for (const p of [pm, ps]) {
      try {
        fsOps.unlinkSync(p);
      } catch {
        // best effort: recoverCheckpoint removes what is left
      }
    }
    throw new CheckpointWriteError(
      `checkpoint of step ${st.step} not committed: renaming ${ps} failed (${(e as Error).message}). ${previous}`,
      e,
    );
  }
  try {
    fsOps.renameSync(pm, join(dir, 'model.safetensors'));
  } catch (e) {
    throw new CheckpointWriteError(
      `checkpoint of step ${st.step}: renaming ${pm} failed (${(e as Error).message}); the trainer state is committed and a --resume completes the model file from ${pm}`,
      e,
    );
  }
  syncDir(dir);
}

/**
 * Bring a run folder to a consistent checkpoint after a crash, before resuming: finish a commit that stopped between
 * its two renames, and remove pending and temp files a killed writer left behind. Returns what it did (for the log),
 * or null when there was nothing to do. Only the process that owns the run (the trainer on --resume) calls this.
 */
export function recoverCheckpoint(dir: string): string | null {
  const done: string[] = [];
  const pm = join(dir, PENDING_MODEL);
  const statePath = join(dir, 'trainer_state.safetensors');
  if (existsSync(pm)) {
    let pendingSum: string | null = null;
    let committedFor: string | undefined;
    try {
      pendingSum = readCheckpointFile(pm, 'checkpoint').checksum;
      if (existsSync(statePath)) committedFor = readCheckpointFile(statePath, 'trainer state').metadata.model_checksum;
    } catch {
      pendingSum = null; // a damaged pending file was never committed
    }
    if (pendingSum !== null && pendingSum === committedFor) {
      renameSync(pm, join(dir, 'model.safetensors'));
      done.push(`finished an interrupted checkpoint commit (model.safetensors ${pendingSum})`);
    } else {
      unlinkSync(pm);
      done.push('removed an uncommitted pending model file');
    }
  }
  for (const name of readdirSync(dir)) {
    if (name === PENDING_STATE || /^\..+\.\d+\.tmp$/.test(name)) {
      unlinkSync(join(dir, name));
      done.push(`removed ${name} left by an interrupted write`);
    }
  }
  if (done.length) syncDir(dir);
  return done.length ? done.join('; ') : null;
}

export function loadTrainerState(dir: string, config: ModelConfig): TrainerState {
  const path = join(dir, 'trainer_state.safetensors');
  if (!existsSync(path))
    throw new Error(
      `trainer state: ${path} does not exist (a run folder without it can be sampled and evaluated, not resumed)`,
    );
  const { metadata, tensors } = readCheckpointFile(path, 'trainer state');
  if (metadata.format !== TRAINER_STATE_FORMAT)
    throw new Error(
      `trainer state: ${path}: format is ${JSON.stringify(metadata.format)}, this version reads '${TRAINER_STATE_FORMAT}'`,
    );
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0)
    throw new Error(
      `trainer state: ${path}: metadata step must be a non-negative integer, found ${JSON.stringify(metadata.step)}`,
    );
  let sampler: TrainerState['sampler'];
  let info: Record<string, unknown>;
  try {
    sampler = JSON.parse(metadata.sampler ?? '');
    info = JSON.parse(metadata.info ?? '{}');
  } catch (e) {
    throw new Error(`trainer state: ${path}: metadata sampler/info is not valid JSON (${(e as Error).message})`);
  }
  if (!sampler || !Array.isArray(sampler.rng) || sampler.rng.length !== 4 || !Number.isInteger(sampler.batches)) {
    throw new Error(
      `trainer state: ${path}: metadata sampler must be {rng: [4 uint32], batches: int}, found ${metadata.sampler}`,
    );
  }
  const m: HostParams = new Map();
  const v: HostParams = new Map();
  for (const s of paramSpecs(config)) {
    for (const [prefix, dst] of [
      ['exp_avg.', m],
      ['exp_avg_sq.', v],
    ] as const) {
      const t = tensors.get(prefix + s.name);
      if (!t) throw new Error(`trainer state: ${path} has no tensor '${prefix}${s.name}'`);
      if (t.shape.join(',') !== s.shape.join(','))
        throw new Error(`trainer state: ${path}: '${prefix}${s.name}' has shape [${t.shape}], expected [${s.shape}]`);
      if (t.dtype !== 'F32' && t.dtype !== 'F64')
        throw new Error(`trainer state: ${path}: '${prefix}${s.name}' is ${t.dtype}; expected F32 or F64`);
      dst.set(s.name, t.data as HostArray);
    }
  }
  return { step, sampler, info, m, v, modelChecksum: metadata.model_checksum };
}
