// The bytes of a run folder's model files — config.json and model.safetensors — written and read without a file
// system, so that the CLI (src/train/checkpoint.ts, which adds the disk) and the browser playground read them with
// the same checks.
//
//   config.json         the `lm` model config + `tokenizer` + `monet_ts_format` (this file format's version) +
//                       `monet_ts_checksum` (last key: CRC-32 of the file's bytes, src/validate.ts)
//   model.safetensors   parameters under their Hugging Face / Monet names and the BatchNorm running statistics
//                       (their state name without `state.`); metadata: format, step, checksum of all the file's bytes
//
// Whose files: a config.json with `monet_ts_format` makes the folder ours, and then every file must carry its
// checksum (a missing one is damage or a renamed key: an error). A folder without it was written by another tool
// ("foreign"): files without a checksum load with a warning. Values are checked on load too: a checksum finds
// damage, not a forged file, and a NaN weight would otherwise print NUL bytes without an error.

import type { TensorMap, Tensor } from '../tensor.ts';
import {
  checkFinite,
  type FileOrigin,
  jsonDepth,
  MAX_WEIGHT,
  parseCheckpointBytes,
  parseSealedJson,
  sealedJson,
  serializeSealed,
} from '../validate.ts';
import { lmParams, lmState } from '../kinds/lm.ts';
import { lmConfigOf, paramSpecs, stateSpecs, validateConfig, type ModelConfig } from './presets.ts';

export type HostArray = Float32Array | Float64Array;
export type HostParams = Map<string, HostArray>;

/** Version 2: the checksum covers every byte of each file (version 1 covered the tensors only). */
export const CHECKPOINT_FORMAT = 'monet-ts-checkpoint/2';

/** Tokenizers a run may name in config.json (src/train/tokenizer.ts). */
export const TOKENIZERS = ['bytes'] as const;

export interface RunConfigFile extends ModelConfig {
  tokenizer: string;
  monet_ts_format: string;
}

/** The checkpoint name of a state tensor: `state.model.layers.0.router.norm1.running_mean` → without `state.`. */
export function stateCheckpointName(stateName: string): string {
  return stateName.startsWith('state.') ? stateName.slice(6) : stateName;
}

function tensorOf(shape: number[], data: HostArray): Tensor {
  return { dtype: data instanceof Float64Array ? 'F64' : 'F32', shape, data };
}

// ---------------------------------------------------------------------------------------------------------------
// config.json

/** The text of a run's config.json (sealed with its checksum). */
export function runConfigJson(config: ModelConfig, tokenizer: string): string {
  const file: RunConfigFile = { ...config, tokenizer, monet_ts_format: CHECKPOINT_FORMAT };
  return sealedJson(file);
}

export interface RunConfig {
  config: ModelConfig;
  tokenizer: string;
  /** 'own' when the file carries monet_ts_format; the folder's other files are then held to our format too. */
  origin: FileOrigin;
  warnings: string[];
}

/** Where a parsed JSON value holds a number that overflowed to ±Infinity (`1e400`), or null. */
function overflowAt(v: unknown, path: string): string | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : path;
  if (v === null || typeof v !== 'object') return null;
  for (const [k, x] of Object.entries(v)) {
    const at = overflowAt(x, Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
    if (at) return at;
  }
  return null;
}

/** Read config.json's bytes: checksum, nesting, format version, tokenizer, then the model config's own rules. */
export function parseRunConfig(bytes: Uint8Array, source: string): RunConfig {
  const { value, check } = parseSealedJson(
    bytes,
    source,
    (v) => ('monet_ts_format' in v ? 'own' : 'foreign'),
    "a run folder's config.json",
  );
  // A config is flat (only aux and peer_layers nest, one level); refuse deep nesting before anything walks it.
  if (jsonDepth(value, 3) > 3)
    throw new Error(
      `checkpoint: ${source} nests values more than 3 levels deep; expected a flat model config ` +
        "(only 'aux' and 'peer_layers' hold an object or a list)",
    );
  const { tokenizer = 'bytes', monet_ts_format, ...rest } = value;
  const origin: FileOrigin = monet_ts_format === undefined ? 'foreign' : 'own';
  if (origin === 'own' && monet_ts_format !== CHECKPOINT_FORMAT)
    throw new Error(
      `checkpoint: ${source}: monet_ts_format is ${JSON.stringify(String(monet_ts_format).slice(0, 60))}; ` +
        `this version of monet-ts reads '${CHECKPOINT_FORMAT}'`,
    );
  if (typeof tokenizer !== 'string' || !(TOKENIZERS as readonly string[]).includes(tokenizer))
    throw new Error(
      `checkpoint: ${source}: tokenizer must be one of ${TOKENIZERS.map((t) => `'${t}'`).join(', ')}, ` +
        `found ${typeof tokenizer === 'string' ? `'${tokenizer.slice(0, 40)}'` : String(tokenizer)}`,
    );
  // JSON.parse reads 1e400 as Infinity, which a message would then print as "null".
  const inf = overflowAt(rest, '');
  if (inf)
    throw new Error(
      `checkpoint: ${source}: '${inf}' is a number too large for a float64 (it reads as Infinity); ` +
        'expected a finite number',
    );
  try {
    validateConfig(rest);
  } catch (e) {
    throw new Error(`checkpoint: ${source}: ${(e as Error).message}`);
  }
  return { config: rest, tokenizer, origin, warnings: check.warning ? [check.warning] : [] };
}

// ---------------------------------------------------------------------------------------------------------------
// model.safetensors

/** The model file's bytes and checksum: tensors in paramSpecs order, then the BN buffers. */
export function modelFileBytes(
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
  return serializeSealed(tensors, {
    format: 'pt',
    monet_ts_format: CHECKPOINT_FORMAT,
    ...(step !== undefined ? { monet_ts_step: String(step) } : {}),
  });
}

export interface ModelFile {
  params: HostParams; // values keep their stored dtype (F32 or F64)
  state: HostParams; // under their state names (`state.…`)
  checksum: string | null;
  step?: number;
  warnings: string[];
}

/**
 * Read model.safetensors' bytes against its config: checksum (required when the folder is ours), format version,
 * every name, shape and dtype the config implies and nothing else, finite values, non-negative running variances.
 */
export function parseModelFile(bytes: Uint8Array, source: string, config: ModelConfig, origin: FileOrigin): ModelFile {
  const file = parseCheckpointBytes(bytes, source, (meta) =>
    origin === 'own' || meta.monet_ts_format !== undefined ? 'own' : 'foreign',
  );
  const { tensors, metadata } = file;
  if (metadata.monet_ts_format !== undefined && metadata.monet_ts_format !== CHECKPOINT_FORMAT)
    throw new Error(
      `checkpoint: ${source}: monet_ts_format is ${JSON.stringify(metadata.monet_ts_format.slice(0, 60))}; ` +
        `this version of monet-ts reads '${CHECKPOINT_FORMAT}'`,
    );
  let step: number | undefined;
  if (metadata.monet_ts_step !== undefined) {
    step = /^\d{1,15}$/.test(metadata.monet_ts_step) ? Number(metadata.monet_ts_step) : Number.NaN;
    if (!Number.isSafeInteger(step))
      throw new Error(
        `checkpoint: ${source}: monet_ts_step must be a non-negative integer, ` +
          `found ${JSON.stringify(metadata.monet_ts_step.slice(0, 40))}`,
      );
  }
  const seen = new Set<string>();
  const take = (name: string, shape: number[], where: string): HostArray => {
    const t = tensors.get(name);
    if (!t)
      throw new Error(
        `checkpoint: ${source} has no tensor '${name}' (${where} of a ${config.ffn} model per config.json)`,
      );
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i]))
      throw new Error(`checkpoint: ${source}: tensor '${name}' has shape [${t.shape}], config.json implies [${shape}]`);
    if (t.dtype !== 'F32' && t.dtype !== 'F64')
      throw new Error(`checkpoint: ${source}: tensor '${name}' is ${t.dtype}; expected F32 or F64`);
    checkFinite(t.data as HostArray, `checkpoint: ${source}: tensor '${name}'`, MAX_WEIGHT);
    seen.add(name);
    return t.data as HostArray;
  };
  const params: HostParams = new Map();
  const state: HostParams = new Map();
  // The config's tensors are listed lazily (a generator), so that a config.json asking for far more tensors than the
  // file holds (a hand-edited `num_hidden_layers: 4096, num_experts: 65536`: 805 million) fails at the first
  // missing one instead of exhausting the JS heap with the list.
  const lm = lmConfigOf(config);
  for (const s of lmParams(lm)) params.set(s.name, take(s.name, s.shape, 'a parameter'));
  for (const s of lmState(lm)) {
    const name = s.name;
    const a = take(name, s.shape, 'BatchNorm state');
    if (name.endsWith('running_var')) {
      const i = a.findIndex((x) => x < 0);
      if (i >= 0)
        throw new Error(`checkpoint: ${source}: tensor '${name}': variance ${a[i]} at index ${i} is negative`);
    }
    state.set(`state.${name}`, a);
  }
  const extra = [...tensors.keys()].filter((n) => !seen.has(n));
  if (extra.length > 0)
    throw new Error(
      `checkpoint: ${source} holds tensors that config.json does not describe: ` +
        `${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`,
    );
  return { params, state, checksum: file.checksum, step, warnings: file.warning ? [file.warning] : [] };
}
