// The way out: one of our Monet run folders written as a MonetLLM folder (src/hf/folder.ts describes the layout),
// so that a model trained here loads in PyTorch / transformers with the official modeling code.
//
// Written: config.json (model_type "monet", src/hf/config.ts hfConfigOf), generation_config.json, the weights in
// BF16 (rounded to nearest even) or F32 under the same tensor names, the routers' BatchNorm buffers
// (running_mean, running_var) and num_batches_tracked (I64, the run's step) as PyTorch's BatchNorm1d stores them;
// one model.safetensors when the data fits one shard, else model-0000i-of-0000n.safetensors + the index. Our run
// folders use the byte tokenizer (id = UTF-8 byte), which has no tokenizer.json: none is written, and the README
// says how to use the ids.

import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostArray, HostParams } from '../train/checkpoint.ts';
import { paramSpecs, stateSpecs, type ModelConfig } from '../train/presets.ts';
import { hfConfigOf } from './config.ts';
import { HF_INDEX, HF_SINGLE } from './folder.ts';
import { f32ToBf16 } from './shard.ts';

export interface ExportOptions {
  dtype: 'bf16' | 'f32';
  /** Largest shard, in bytes of tensor data. */
  shardBytes: number;
  /** Written as each router BatchNorm's num_batches_tracked. */
  step: number;
}

interface Blob {
  name: string;
  dtype: 'BF16' | 'F32' | 'I64';
  shape: number[];
  bytes: Uint8Array;
}

function blobOf(name: string, shape: number[], a: HostArray, dtype: 'bf16' | 'f32'): Blob {
  const f32 = a instanceof Float32Array ? a : Float32Array.from(a);
  if (dtype === 'f32')
    return { name, dtype: 'F32', shape, bytes: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength) };
  const h = f32ToBf16(f32);
  return { name, dtype: 'BF16', shape, bytes: new Uint8Array(h.buffer) };
}

/** A safetensors file: 8-byte header length, JSON header padded with spaces to 8 bytes, data in the given order. */
function shardBytes(blobs: Blob[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const b of blobs) {
    header[b.name] = { dtype: b.dtype, shape: b.shape, data_offsets: [offset, offset + b.bytes.length] };
    offset += b.bytes.length;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (new TextEncoder().encode(text).length % 8)) % 8);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const b of blobs) {
    out.set(b.bytes, p);
    p += b.bytes.length;
  }
  return out;
}

/** Write `config` + weights as a MonetLLM folder in `dir` (which must not exist or be empty). */
export function exportHf(
  dir: string,
  config: ModelConfig,
  params: HostParams,
  state: HostParams,
  o: ExportOptions,
): { files: string[]; bytes: number } {
  if (config.ffn !== 'monet')
    throw new Error(`export --hf: only Monet models have a MonetLLM layout; this run's ffn is '${config.ffn}'`);
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new Error(`export --hf: ${dir} exists and is not empty; choose a new folder (nothing was written)`);
  const blobs: Blob[] = [];
  for (const s of paramSpecs(config)) {
    const a = params.get(s.name);
    if (!a) throw new Error(`export --hf: parameter '${s.name}' is missing from the run's model`);
    blobs.push(blobOf(s.name, s.shape, a, o.dtype));
  }
  for (const s of stateSpecs(config)) {
    const a = state.get(s.name);
    if (!a) throw new Error(`export --hf: BatchNorm buffer '${s.name}' is missing from the run's model`);
    const name = s.name.replace(/^state\./, '');
    blobs.push(blobOf(name, s.shape, a, o.dtype));
    if (name.endsWith('.running_var')) {
      const tracked = name.replace(/running_var$/, 'num_batches_tracked');
      blobs.push({
        name: tracked,
        dtype: 'I64',
        shape: [],
        bytes: new Uint8Array(BigInt64Array.of(BigInt(o.step)).buffer),
      });
    }
  }
  const groups: Blob[][] = [[]];
  let size = 0;
  for (const b of blobs) {
    if (size > 0 && size + b.bytes.length > o.shardBytes) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(b);
    size += b.bytes.length;
  }
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  let total = 0;
  groups.forEach((g, j) => {
    const file =
      groups.length === 1
        ? HF_SINGLE
        : `model-${String(j + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    writeFileSync(join(dir, file), shardBytes(g));
    files.push(file);
    for (const b of g) {
      weightMap[b.name] = file;
      total += b.bytes.length;
    }
  });
  const json = (name: string, v: unknown) => {
    writeFileSync(join(dir, name), `${JSON.stringify(v, null, 2)}\n`);
    files.push(name);
  };
  if (groups.length > 1) json(HF_INDEX, { metadata: { total_size: total }, weight_map: weightMap });
  json('config.json', hfConfigOf(config, o.dtype === 'bf16' ? 'bfloat16' : 'float32'));
  json('generation_config.json', { _from_model_config: true, bos_token_id: null, eos_token_id: null });
  return { files, bytes: total };
}
