// A MonetLLM model folder as the Hugging Face hub ships it:
//
//   config.json                        model_type "monet" (src/hf/config.ts)
//   model.safetensors                  all weights in one file, or
//   model.safetensors.index.json       {"metadata": {...}, "weight_map": {tensor name: shard file}} and the shards
//   model-00001-of-0000N.safetensors   (any names the weight_map gives)
//   generation_config.json             optional: eos/bos ids for generation
//   tokenizer.json, tokenizer_config.json, tokenizer.model, special_tokens_map.json   (src/hf/tokenizer.ts)
//
// Tensor names are those of our run folders (model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight,
// model.layers.{i}.router.w1.weight, model.layers.{i}.moe.u1.weight, …, lm_head.weight) and the BatchNorm buffers
// model.layers.{i}.router.norm{1,2}.running_mean / running_var. BatchNorm's num_batches_tracked (I64; it only
// matters for a momentum of None in training) and rotary_emb.inv_freq (recomputed from rope_theta) are read past
// with a note. Any other tensor, a missing one, or a shape that the config does not imply is an error naming the
// file and the tensor.

import { paramSpecs, stateSpecs, type ModelConfig } from '../train/presets.ts';
import type { HostParams } from '../train/checkpoint.ts';
import type { StreamedTensor } from '../train/engine.ts';
import { parseGenerationConfig, parseHfConfig } from './config.ts';
import { openShard, readBf16Bits, readF32, type Shard } from './shard.ts';
import { badBf16Value, CHECKSUM_KEY, checkFinite, MAX_WEIGHT } from '../validate.ts';
import type { FolderSource } from './source.ts';

export const HF_INDEX = 'model.safetensors.index.json';
export const HF_SINGLE = 'model.safetensors';

/** True when the folder holds a Hugging Face config (model_type key) rather than one of our run configs. */
export async function isHfFolder(src: FolderSource): Promise<boolean> {
  if (!src.has('config.json')) return false;
  try {
    const c = JSON.parse(await src.text('config.json')) as Record<string, unknown>;
    return typeof c === 'object' && c !== null && 'model_type' in c && !('monet_ts_format' in c);
  } catch {
    return false;
  }
}

async function readJson(src: FolderSource, name: string): Promise<unknown> {
  let text: string;
  try {
    text = await src.text(name);
  } catch (e) {
    throw new Error(`cannot read ${src.where(name)} (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${src.where(name)} is not valid JSON (${(e as Error).message})`);
  }
}

/** The shards of the folder and which shard holds each tensor. */
async function openWeights(src: FolderSource): Promise<{ shards: Shard[]; holder: Map<string, Shard> }> {
  const holder = new Map<string, Shard>();
  if (src.has(HF_SINGLE)) {
    const s = await openShard(src, HF_SINGLE);
    for (const n of s.entries.keys()) holder.set(n, s);
    return { shards: [s], holder };
  }
  if (!src.has(HF_INDEX)) {
    const other = src.names().find((n) => n.endsWith('.bin') || n.endsWith('.pt') || n.endsWith('.pth'));
    throw new Error(
      `${src.label}: neither ${HF_SINGLE} nor ${HF_INDEX} is there` +
        (other ? ` (found ${other}: PyTorch pickle weights are not read; save with safe_serialization=True)` : ''),
    );
  }
  const idxWhere = src.where(HF_INDEX);
  const idx = (await readJson(src, HF_INDEX)) as { weight_map?: unknown };
  const wm = idx?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm))
    throw new Error(`${idxWhere}: expected an object with 'weight_map' {tensor name: shard file}`);
  const files = new Map<string, string[]>(); // shard file → names the index puts there
  for (const [name, file] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\'))
      throw new Error(
        `${idxWhere}: weight_map['${name}'] must be a file name in the folder, found ${JSON.stringify(file)}`,
      );
    if (!files.has(file)) files.set(file, []);
    files.get(file)!.push(name);
  }
  const shards: Shard[] = [];
  for (const [file, names] of files) {
    if (!src.has(file))
      throw new Error(`${idxWhere}: weight_map puts '${names[0]}' in ${file}, which is not in ${src.label}`);
    const s = await openShard(src, file);
    shards.push(s);
    for (const n of names)
      if (!s.entries.has(n))
        throw new Error(`${idxWhere}: weight_map puts '${n}' in ${file}, which has no such tensor`);
    for (const n of s.entries.keys()) {
      const prev = holder.get(n);
      if (prev) throw new Error(`${src.label}: tensor '${n}' is in both ${prev.file} and ${file}`);
      const mapped = (wm as Record<string, unknown>)[n];
      if (mapped !== file)
        throw new Error(
          `${src.where(file)}: holds tensor '${n}', which ${idxWhere} ` +
            (mapped ? `puts in ${mapped}` : 'does not list'),
        );
      holder.set(n, s);
    }
  }
  return { shards, holder };
}

export interface HfModel {
  config: ModelConfig;
  params: HostParams;
  /** BF16 matrices kept as their 16-bit patterns (LoadOptions.keep16), not in `params`. */
  packed: Map<string, Uint16Array>;
  state: HostParams;
  eos: number[];
  bos: number | null;
  /** The storage dtypes found, e.g. {BF16: 170, I64: 12}. */
  dtypes: Record<string, number>;
  notes: string[];
}

export interface LoadOptions {
  /**
   * Keep BF16 matrices (every 2-D weight, the embedding table and the head included) as 16-bit patterns instead
   * of widening them: half the memory; the device reads them in place (src/layers/packed-weights.ts).
   */
  keep16?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Elements per piece of a 16-bit matrix read in pieces (default 2^23: 16 MB). */
  pieceElements?: number;
}

/** One tensor the folder will give, where it is, and how it will be read. */
interface PlannedTensor {
  /** Our name (params: as in the file; state: `state.` + the file's name). */
  name: string;
  /** The name in the file. */
  file: string;
  into: 'params' | 'state';
  shard: Shard;
  /** Kept as bfloat16 bits (LoadOptions.keep16 on a BF16 matrix). */
  keep16: boolean;
}

/**
 * A folder checked and ready to read: its config, generation settings, notes, and every tensor's place — checked
 * against the config (names, shapes, dtypes) before any weight is read.
 */
export interface HfPlan {
  src: FolderSource;
  config: ModelConfig;
  eos: number[];
  bos: number | null;
  dtypes: Record<string, number>;
  notes: string[];
  tensors: PlannedTensor[];
  /** Bytes the weights take once read: float32 for widened tensors, 2 per element for the kept bf16 ones. */
  bytes: number;
  /** Parameters (elements of the config's parameter tensors). */
  parameters: number;
}

/** One tensor as read: float32 data, or the bfloat16 bits of a matrix kept 16-bit (`into: 'packed'`). */
export type LoadedTensor = StreamedTensor;

/** wasm32 addresses 4 GiB: the weights (bf16 matrices, float32 rest) and the activations share it. */
const WASM_BYTES = 4 * 1024 ** 3;

/** Why the plan's weights cannot go onto the WASM backend (more than 90 % of wasm32's 4 GiB), or null. */
export function tooLargeForWasm(plan: HfPlan): string | null {
  if (plan.bytes <= WASM_BYTES * 0.9) return null;
  return (
    `${plan.src.label}: ${(plan.parameters / 1e9).toFixed(2)}B parameters take ` +
    `${(plan.bytes / 1024 ** 3).toFixed(1)} GiB, more than the WASM backend's 4 GiB address space; use WebGPU ` +
    '(or a smaller model)'
  );
}

/** Read config and generation config, open the shards and check every tensor's name, shape and dtype. */
export async function planHfModel(src: FolderSource, o: LoadOptions = {}): Promise<HfPlan> {
  if (!src.has('config.json'))
    throw new Error(`${src.label}: config.json is missing (expected a MonetLLM model folder)`);
  const info = parseHfConfig(await readJson(src, 'config.json'), src.where('config.json'));
  const notes = [...info.notes];
  let { eos, bos } = info;
  if (src.has('generation_config.json')) {
    const g = parseGenerationConfig(await readJson(src, 'generation_config.json'), src.where('generation_config.json'));
    if (g.eos) eos = g.eos;
    if (g.bos !== undefined) bos = g.bos;
  }
  const { config } = info;
  const { shards, holder } = await openWeights(src);
  // Foreign files (src/validate.ts): a Hugging Face shard carries no checksum, so damage cannot be detected.
  for (const s of shards)
    if (s.metadata[CHECKSUM_KEY] === undefined)
      notes.push(`${src.where(s.file)}: no ${CHECKSUM_KEY}: written by another tool, damage cannot be detected`);
  const dtypes: Record<string, number> = {};
  const wanted = new Map<string, { shape: number[]; into: 'params' | 'state'; name: string }>();
  for (const s of paramSpecs(config)) wanted.set(s.name, { shape: s.shape, into: 'params', name: s.name });
  for (const s of stateSpecs(config)) {
    const file = s.name.replace(/^state\./, '');
    wanted.set(file, { shape: s.shape, into: 'state', name: s.name });
  }
  let ignoredTracked = 0;
  let ignoredInvFreq = 0;
  for (const [n, shard] of holder) {
    const e = shard.entries.get(n)!;
    dtypes[e.dtype] = (dtypes[e.dtype] ?? 0) + 1;
    if (wanted.has(n)) continue;
    if (/\.router\.norm[12]\.num_batches_tracked$/.test(n) && e.dtype === 'I64') {
      ignoredTracked++;
      continue;
    }
    if (/\.self_attn\.rotary_emb\.inv_freq$/.test(n)) {
      ignoredInvFreq++;
      continue;
    }
    if (n === 'lm_head.weight' && config.tie_word_embeddings) {
      notes.push(`${src.where(shard.file)}: 'lm_head.weight' ignored (tie_word_embeddings: the head is embed_tokens)`);
      continue;
    }
    throw new Error(
      `${src.where(shard.file)}: tensor '${n}' is not part of a Monet model with this config.json ` +
        `(${config.num_hidden_layers} layers, moe_groups ${config.moe_groups}, moe_decompose ${config.moe_decompose})`,
    );
  }
  if (ignoredTracked > 0)
    notes.push(
      `${ignoredTracked} BatchNorm num_batches_tracked buffers (I64) read and ignored: eval mode does not use them`,
    );
  if (ignoredInvFreq > 0)
    notes.push(
      `${ignoredInvFreq} rotary_emb.inv_freq buffers ignored: RoPE frequencies are recomputed from rope_theta`,
    );
  const tensors: PlannedTensor[] = [];
  let bytes = 0;
  let parameters = 0;
  for (const [n, w] of wanted) {
    const shard = holder.get(n);
    if (!shard)
      throw new Error(
        `${src.label}: tensor '${n}' is missing (a ${w.into === 'params' ? 'parameter' : 'BatchNorm buffer'} of a ` +
          `${config.num_hidden_layers}-layer Monet-${config.moe_decompose === 'horizontal' ? 'HD' : 'VD'} ` +
          'model per config.json)',
      );
    const e = shard.entries.get(n)!;
    if (e.shape.length !== w.shape.length || e.shape.some((v, i) => v !== w.shape[i]))
      throw new Error(
        `${src.where(shard.file)}: tensor '${n}' has shape [${e.shape}], config.json implies [${w.shape}]`,
      );
    if (e.dtype === 'I64') throw new Error(`${src.where(shard.file)}: tensor '${n}' is I64; expected BF16, F16 or F32`);
    const keep16 = o.keep16 === true && e.dtype === 'BF16' && w.into === 'params' && e.shape.length === 2;
    const count = w.shape.reduce((a, b) => a * b, 1);
    bytes += (keep16 ? 2 : 4) * count;
    if (w.into === 'params') parameters += count;
    tensors.push({ name: w.name, file: n, into: w.into, shard, keep16 });
  }
  return { src, config, eos, bos, dtypes, notes, tensors, bytes, parameters };
}

/**
 * The tensors of a plan, read one at a time (a consumer that uploads each one and lets it go holds at most one
 * tensor on the host). Values are checked as our own checkpoints are (src/validate.ts): NaN, ±Inf or a weight whose
 * products overflow float32 is refused, naming the file and the tensor.
 */
export async function* readHfTensors(
  plan: HfPlan,
  o: Pick<LoadOptions, 'onProgress' | 'pieceElements'> = {},
): AsyncGenerator<LoadedTensor> {
  const { src } = plan;
  const piece = o.pieceElements ?? PIECE;
  // every piece of every 16-bit matrix is read into this one buffer (each consumer copies a piece before it asks
  // for the next); sized at the first matrix, so a tiny folder does not take 16 MB
  let buf: Uint8Array | null = null;
  const buffer = (elements: number): Uint8Array => {
    if (!buf || buf.length < 2 * elements) buf = new Uint8Array(2 * elements);
    return buf;
  };
  let done = 0;
  for (const t of plan.tensors) {
    const where = `${src.where(t.shard.file)}: tensor '${t.file}'`;
    if (t.keep16) {
      const length = t.shard.entries.get(t.file)!.shape.reduce((a, b) => a * b, 1);
      const into = buffer(Math.min(piece, length));
      yield { name: t.name, into: 'packed', length, pieces: bf16Pieces(src, t, length, piece, where, into) };
    } else {
      const data = await readF32(src, t.shard, t.file);
      checkFinite(data, where, MAX_WEIGHT);
      yield { name: t.name, into: t.into, data };
    }
    o.onProgress?.(++done, plan.tensors.length);
  }
}

/** Elements per piece of a 16-bit matrix read in pieces (16 MB). */
const PIECE = 1 << 23;

/**
 * A BF16 tensor's bits, PIECE elements at a time, each piece checked before it is handed out; every piece is read
 * into `into`, so it is valid until the next one is asked for.
 */
async function* bf16Pieces(
  src: FolderSource,
  t: PlannedTensor,
  length: number,
  piece: number,
  where: string,
  into: Uint8Array,
) {
  for (let at = 0; at < length; at += piece) {
    const bits = await readBf16Bits(src, t.shard, t.file, at, Math.min(piece, length - at), into);
    const bad = badBf16Value(bits, MAX_WEIGHT, at);
    if (bad) throw new Error(`${where}: ${bad}; expected finite numbers (the file is damaged or forged)`);
    yield bits;
  }
}

/** Read config, generation config and every weight of a MonetLLM folder (float32, or bf16 kept with keep16). */
export async function loadHfModel(src: FolderSource, o: LoadOptions = {}): Promise<HfModel> {
  const plan = await planHfModel(src, o);
  const params: HostParams = new Map();
  const state: HostParams = new Map();
  const packed = new Map<string, Uint16Array>();
  for await (const t of readHfTensors(plan, o)) {
    if (t.into === 'packed') {
      const bits = new Uint16Array(t.length);
      let at = 0;
      for await (const p of t.pieces) {
        bits.set(p, at);
        at += p.length;
      }
      packed.set(t.name, bits);
    } else (t.into === 'params' ? params : state).set(t.name, t.data);
  }
  const { config, eos, bos, dtypes, notes } = plan;
  return { config, params, packed, state, eos, bos, dtypes, notes };
}
