// A run folder's checkpoint from bytes, for pages that have no file system (the playground's "load a checkpoint", the
// unit site's test box). The CLI twin is src/train/checkpoint.ts loadModel, which reads the same two files from disk;
// both check every tensor against the config (name, shape, dtype).

import type { Params } from '../../reference/common.ts';
import { parseSafetensors } from '../safetensors.ts';
import { stateCheckpointName } from '../train/checkpoint.ts';
import { paramSpecs, stateSpecs, validateConfig, type ModelConfig } from '../train/presets.ts';

/** A model a page can look inside: float64 parameters under their checkpoint names. */
export interface LoadedModel {
  label: string; // where it came from, for the page
  config: ModelConfig;
  params: Params;
  state: Params; // checkpoint names (no `state.` prefix)
}

// src/train/checkpoint.ts loadModel, which reads the same two files from disk).

export function modelFromFiles(
  configText: string,
  configName: string,
  modelBytes: Uint8Array,
  modelName: string,
): LoadedModel {
  let raw: unknown;
  try {
    raw = JSON.parse(configText);
  } catch (e) {
    throw new Error(`${configName} is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`${configName}: expected a JSON object (a run folder's config.json)`);
  const { tokenizer, monet_ts_format, ...rest } = raw as Record<string, unknown>;
  void monet_ts_format;
  if (tokenizer !== undefined && tokenizer !== 'bytes')
    throw new Error(
      `${configName}: tokenizer is ${JSON.stringify(tokenizer)}; the playground reads byte-level models ('bytes')`,
    );
  const config = rest as unknown as ModelConfig;
  try {
    validateConfig(config);
  } catch (e) {
    throw new Error(`${configName}: ${(e as Error).message}`);
  }
  if (config.vocab_size !== 256)
    throw new Error(`${configName}: vocab_size is ${config.vocab_size}; byte-level models have 256`);
  const { tensors } = parseSafetensors(modelBytes, modelName);
  const take = (name: string, shape: number[]): Float64Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${modelName} has no tensor '${name}', which ${configName} (ffn '${config.ffn}') implies`);
    if (t.shape.join(',') !== shape.join(','))
      throw new Error(`${modelName}: tensor '${name}' has shape [${t.shape}], ${configName} implies [${shape}]`);
    if (t.dtype !== 'F32' && t.dtype !== 'F64')
      throw new Error(`${modelName}: tensor '${name}' is ${t.dtype}; expected F32 or F64`);
    return Float64Array.from(t.data as Float32Array | Float64Array);
  };
  const params: Params = {};
  for (const s of paramSpecs(config)) params[s.name] = take(s.name, s.shape);
  const state: Params = {};
  for (const s of stateSpecs(config)) state[stateCheckpointName(s.name)] = take(stateCheckpointName(s.name), s.shape);
  return { label: `${modelName} + ${configName}`, config, params, state };
}
