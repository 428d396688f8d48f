// A run folder's checkpoint from bytes, for pages that have no file system (the playground's "load a checkpoint", the
// unit site's test box). The CLI twin is src/train/checkpoint.ts loadModel, which reads the same two files from disk;
// both read them with src/train/run-files.ts (checksums, format version, every tensor's name, shape, dtype and values).

import type { Params } from '../../reference/common.ts';
import type { ModelConfig } from '../train/presets.ts';
import { parseModelFile, parseRunConfig, stateCheckpointName } from '../train/run-files.ts';

/** A model a page can look inside: float64 parameters under their checkpoint names. */
export interface LoadedModel {
  label: string; // where it came from, for the page
  config: ModelConfig;
  params: Params;
  state: Params; // checkpoint names (no `state.` prefix)
}

export function modelFromFiles(
  configText: string,
  configName: string,
  modelBytes: Uint8Array,
  modelName: string,
): LoadedModel {
  // The same checks as the CLI's (src/train/run-files.ts): checksums, format version, every tensor and value.
  const rc = parseRunConfig(new TextEncoder().encode(configText), configName);
  const { config } = rc;
  if (config.vocab_size !== 256)
    throw new Error(`${configName}: vocab_size is ${config.vocab_size}; byte-level models have 256`);
  const m = parseModelFile(modelBytes, modelName, config, rc.origin);
  const params: Params = {};
  for (const [name, a] of m.params) params[name] = Float64Array.from(a);
  const state: Params = {};
  for (const [name, a] of m.state) state[stateCheckpointName(name)] = Float64Array.from(a);
  return { label: `${modelName} + ${configName}`, config, params, state };
}
