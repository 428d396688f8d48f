// Run-folder checkpoints.
//
//   runs/<name>/model.safetensors    parameters under their Hugging Face / Monet names (docs/fixtures.md), plus the
//                                    BatchNorm running statistics as HF stores buffers (`model.layers.0.router.norm1.
//                                    running_mean`, i.e. our `state.` name without the prefix)
//   runs/<name>/config.json          the `lm` model config (docs/fixtures.md keys) + tokenizer
//   runs/<name>/trainer_state.safetensors   AdamW moments `exp_avg.<name>` / `exp_avg_sq.<name>`; metadata: step,
//                                    the data sampler's RNG state and batch count, the sampling RNG, the options
//
// Everything is written atomically (src/train/atomic.ts): a crash leaves the previous checkpoint intact.
// Storage dtype: F32 for the wasm/webgpu backends, F64 for the reference backend (what the run computed in).
//
// Integrity (docs/robustness.md): every file of a checkpoint carries a CRC-32 of all its bytes (`monet_ts_checksum`,
// in the safetensors metadata or as config.json's last key; src/validate.ts), verified on every load, so the trainer
// state's step, sampler state and options are covered as well as the tensors. The trainer state also records the
// checksum of the model it belongs to and the step. Values are checked too (finite numbers, a valid RNG state,
// options within their flags' ranges): a checksum finds damage, not a forged file.
//
// A checkpoint is two files, and two renames cannot happen at once, so saveCheckpoint commits in two phases: both
// new files are first written completely as `.<name>.pending`, then trainer_state is renamed into place (the
// commit point: it names the pending model by checksum), then the model.
// A crash between the renames leaves a committed trainer state and a pending model that matches it, and
// recoverCheckpoint (run before a resume) finishes the commit; a crash before the first rename leaves the previous
// checkpoint, and the stale pending files are removed.

import { existsSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { SafetensorsContents } from '../safetensors.ts';
import type { Tensor, TensorMap } from '../tensor.ts';
import {
  type ChecksumCheck,
  checkFinite,
  type FileOrigin,
  parseCheckpointBytes,
  serializeSealed,
} from '../validate.ts';
import { AtomicWriteError, fsOps, syncDir, writeFileAtomic } from './atomic.ts';
import { paramSpecs, type ModelConfig } from './presets.ts';
import {
  type HostArray,
  type HostParams,
  modelFileBytes,
  parseModelFile,
  parseRunConfig,
  type RunConfig,
  runConfigJson,
} from './run-files.ts';

export {
  CHECKPOINT_FORMAT,
  type HostArray,
  type HostParams,
  type RunConfigFile,
  stateCheckpointName,
} from './run-files.ts';

/** Version 2: the checksum covers the metadata (step, sampler, options) as well as the moments. */
export const TRAINER_STATE_FORMAT = 'monet-ts-trainer-state/2';

function tensorOf(shape: number[], data: HostArray): Tensor {
  return { dtype: data instanceof Float64Array ? 'F64' : 'F32', shape, data };
}

function writeConfig(dir: string, config: ModelConfig, tokenizer: string): void {
  writeFileAtomic(join(dir, 'config.json'), runConfigJson(config, tokenizer));
}

/** Writes config.json and model.safetensors (atomically, each); returns the model's checksum. */
export function saveModel(
  dir: string,
  config: ModelConfig,
  tokenizer: string,
  params: HostParams,
  state: HostParams,
): string {
  const { bytes, checksum } = modelFileBytes(config, params, state);
  // config.json first: a model file is only ever read together with a config that describes it.
  writeConfig(dir, config, tokenizer);
  writeFileAtomic(join(dir, 'model.safetensors'), bytes);
  return checksum;
}

/** Read a file of a run folder, naming it when it is missing or unreadable. */
function readRunFile(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`${what}: ${path} does not exist`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`${what}: cannot read ${path} (${(e as Error).message})`);
  }
}

/** Read a checkpoint safetensors file: container checks (src/safetensors.ts) + checksum. */
function readCheckpointFile(path: string, what: string, origin: FileOrigin): SafetensorsContents & ChecksumCheck {
  return parseCheckpointBytes(readRunFile(path, what), path, origin);
}

export function readConfig(dir: string): RunConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path))
    throw new Error(`checkpoint: ${path} does not exist (expected a run folder written by monet train)`);
  return parseRunConfig(readRunFile(path, 'checkpoint'), path);
}

/**
 * Load parameters and state, checking every name, shape and value against the config. Values keep their stored
 * dtype. `warnings`: what a folder written by another tool lacks (a checksum), for the caller to print.
 */
export function loadModel(dir: string): {
  config: ModelConfig;
  tokenizer: string;
  params: HostParams;
  state: HostParams;
  checksum: string | null;
  step?: number;
  warnings: string[];
} {
  const rc = readConfig(dir);
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path) && existsSync(join(dir, PENDING_MODEL))) {
    throw new Error(
      `checkpoint: ${path} does not exist yet: the commit of the run's first checkpoint was interrupted; ` +
        'monet train --resume finishes it',
    );
  }
  const m = parseModelFile(readRunFile(path, 'checkpoint'), path, rc.config, rc.origin);
  return {
    config: rc.config,
    tokenizer: rc.tokenizer,
    params: m.params,
    state: m.state,
    checksum: m.checksum,
    step: m.step,
    warnings: [...rc.warnings, ...m.warnings],
  };
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
  return serializeSealed(tensors, meta).bytes;
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
  const model = modelFileBytes(config, params, state, st.step);
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
      `checkpoint of step ${st.step}: renaming ${pm} failed (${(e as Error).message}); the trainer state is ` +
        `committed and a --resume completes the model file from ${pm}`,
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
      pendingSum = readCheckpointFile(pm, 'checkpoint', 'own').checksum;
      if (existsSync(statePath))
        committedFor = readCheckpointFile(statePath, 'trainer state', 'own').metadata.model_checksum;
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

/** The data sampler's saved position: four uint32 words of RNG state (not all zero) and a batch count. */
function parseSampler(text: string | undefined, path: string): TrainerState['sampler'] {
  let v: unknown;
  try {
    v = JSON.parse(text ?? '');
  } catch (e) {
    throw new Error(`trainer state: ${path}: metadata sampler is not valid JSON (${(e as Error).message})`);
  }
  const s = v as TrainerState['sampler'] | null;
  const word = (x: unknown) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
  if (
    !s ||
    typeof s !== 'object' ||
    !Array.isArray(s.rng) ||
    s.rng.length !== 4 ||
    !s.rng.every(word) ||
    s.rng.every((x) => x === 0) ||
    !Number.isSafeInteger(s.batches) ||
    s.batches < 0
  )
    throw new Error(
      `trainer state: ${path}: metadata sampler must be {rng: [4 uint32, not all 0], batches: integer ≥ 0}, ` +
        `found ${String(text).slice(0, 120)}`,
    );
  return { rng: s.rng, batches: s.batches };
}

/**
 * The trainer state's free-form info: a JSON object. Its options are checked like flags by the trainer, which uses
 * them (openResume; this module stays free of the CLI's option tables, as the browser bundles it).
 */
function parseInfo(text: string | undefined, path: string): Record<string, unknown> {
  let info: unknown;
  try {
    info = JSON.parse(text ?? '{}');
  } catch (e) {
    throw new Error(`trainer state: ${path}: metadata info is not valid JSON (${(e as Error).message})`);
  }
  if (info === null || typeof info !== 'object' || Array.isArray(info))
    throw new Error(`trainer state: ${path}: metadata info must be a JSON object`);
  const o = info as Record<string, unknown>;
  if (o.seconds !== undefined && !(typeof o.seconds === 'number' && Number.isFinite(o.seconds) && o.seconds >= 0))
    throw new Error(`trainer state: ${path}: info.seconds must be a number ≥ 0, found ${String(o.seconds)}`);
  return o;
}

export function loadTrainerState(dir: string, config: ModelConfig): TrainerState {
  const path = join(dir, 'trainer_state.safetensors');
  if (!existsSync(path))
    throw new Error(
      `trainer state: ${path} does not exist (a run folder without it can be sampled and evaluated, not resumed)`,
    );
  const { metadata, tensors } = readCheckpointFile(path, 'trainer state', 'own');
  if (metadata.format !== TRAINER_STATE_FORMAT)
    throw new Error(
      `trainer state: ${path}: format is ${JSON.stringify(String(metadata.format).slice(0, 60))}, ` +
        `this version reads '${TRAINER_STATE_FORMAT}'`,
    );
  const step = /^\d{1,15}$/.test(metadata.step ?? '') ? Number(metadata.step) : Number.NaN;
  if (!Number.isSafeInteger(step))
    throw new Error(
      `trainer state: ${path}: metadata step must be a non-negative integer, ` +
        `found ${JSON.stringify(String(metadata.step).slice(0, 40))}`,
    );
  const sampler = parseSampler(metadata.sampler, path);
  const info = parseInfo(metadata.info, path);
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
      checkFinite(t.data as HostArray, `trainer state: ${path}: '${prefix}${s.name}'`);
      // The second moment is a running mean of squares: a negative one makes AdamW take the root of a negative.
      const neg = prefix === 'exp_avg_sq.' ? (t.data as HostArray).findIndex((x) => x < 0) : -1;
      if (neg >= 0)
        throw new Error(
          `trainer state: ${path}: '${prefix}${s.name}' holds ${t.data[neg]} at index ${neg}; expected ≥ 0`,
        );
      dst.set(s.name, t.data as HostArray);
    }
  }
  const expected = 2 * paramSpecs(config).length;
  if (tensors.size !== expected)
    throw new Error(
      `trainer state: ${path} holds ${tensors.size} tensors; ` +
        `expected ${expected} (exp_avg and exp_avg_sq per parameter)`,
    );
  if (metadata.model_checksum !== undefined && !/^crc32:[0-9a-f]{8}$/.test(metadata.model_checksum))
    throw new Error(`trainer state: ${path}: model_checksum must be "crc32:" and 8 hex digits`);
  return { step, sampler, info, m, v, modelChecksum: metadata.model_checksum };
}
