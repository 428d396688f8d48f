// One safetensors file of a Hugging Face model folder, read piecewise: the header first (every check of
// src/safetensors.ts), then each tensor's byte range when it is asked for. Hugging Face weights come in BF16, F16 or
// F32; buffers such as BatchNorm's `num_batches_tracked` are I64.
//
// 16-bit formats (IEEE-754 half and bfloat16) widen to float32 exactly:
//   bf16 is the upper half of a float32: f32 bits = bf16 bits << 16 (NaN, ±Inf and subnormals included).
//   f16 has 1 sign, 5 exponent (bias 15) and 10 mantissa bits: normal numbers map to exponent + (127 − 15), the
//   mantissa shifts left by 13; subnormals (exponent 0) are m·2⁻²⁴; exponent 31 is ±Inf (m = 0) or NaN.

import { checkHeader, MAX_HEADER_BYTES, SafetensorsError, type HeaderEntry } from '../safetensors.ts';
import type { FolderSource } from './source.ts';

/** Bytes per element of the dtypes a Hugging Face folder may hold. */
export const HF_DTYPE_SIZE = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8 } as const;
export type HfDType = keyof typeof HF_DTYPE_SIZE;

export interface Shard {
  file: string;
  /** Byte offset of the data area in the file. */
  dataStart: number;
  metadata: Record<string, string>;
  entries: Map<string, HeaderEntry<HfDType>>;
}

/** Read and check the header of `file` in `src`. */
export async function openShard(src: FolderSource, file: string): Promise<Shard> {
  const where = src.where(file);
  const size = src.size(file);
  if (size < 8)
    throw new SafetensorsError(`expected at least 8 bytes (the header length), found a file of ${size} bytes`, where);
  const head = await src.bytes(file, 0, 8);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(Math.min(MAX_HEADER_BYTES, size - 8)))
    throw new SafetensorsError(
      `header length (first 8 bytes) says ${n64} bytes; the file has ${size} bytes; ` +
        'not a safetensors file or truncated',
      where,
    );
  const n = Number(n64);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await src.bytes(file, 8, n)));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON (${(e as Error).message})`, where);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw new SafetensorsError('header must be a JSON object', where);
  const { metadata, entries } = checkHeader(header as Record<string, unknown>, size - 8 - n, where, HF_DTYPE_SIZE);
  return { file, dataStart: 8 + n, metadata, entries: new Map(entries.map((e) => [e.name, e])) };
}

/** float32 value of each bfloat16 in `bits` (exact). */
export function bf16ToF32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  return out;
}

/** float32 value of each IEEE half in `bits` (exact). */
export function f16ToF32(bits: Uint16Array, out = new Float32Array(bits.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 0) {
      out[i] = man * 2 ** -24; // zero or subnormal
      if (sign) out[i] = -out[i];
    } else if (exp === 31) {
      u[i] = sign | 0x7f800000 | (man << 13); // ±Inf, NaN
    } else {
      u[i] = sign | ((exp + 112) << 23) | (man << 13);
    }
  }
  return out;
}

/** bfloat16 bits of float32 values, rounded to nearest even (NaN stays NaN). */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * The raw bits of elements [from, from + count) of a BF16 tensor (kept 16-bit on the device); with `into`, read into
 * that buffer (FolderSource.bytes) and valid until it is reused.
 */
export async function readBf16Bits(
  src: FolderSource,
  shard: Shard,
  name: string,
  from = 0,
  count?: number,
  into?: Uint8Array,
): Promise<Uint16Array> {
  const e = shard.entries.get(name);
  if (e?.dtype !== 'BF16') throw new Error(`${src.where(shard.file)}: tensor '${name}' is not BF16`);
  const n = count ?? (e.end - e.begin) / 2 - from;
  const raw = await src.bytes(shard.file, shard.dataStart + e.begin + 2 * from, 2 * n, into);
  // a view at an odd byte offset cannot be a Uint16Array: copy it then
  const own = raw.byteOffset % 2 === 0 ? raw : raw.slice();
  return new Uint16Array(own.buffer, own.byteOffset, n);
}

/** A real tensor of a shard as float32 (16-bit values widened exactly; F64 rounded to float32). */
export async function readF32(src: FolderSource, shard: Shard, name: string): Promise<Float32Array> {
  const e = shard.entries.get(name);
  if (!e) throw new Error(`${src.where(shard.file)} has no tensor '${name}'`);
  const raw = await src.bytes(shard.file, shard.dataStart + e.begin, e.end - e.begin);
  const count = (e.end - e.begin) / HF_DTYPE_SIZE[e.dtype];
  // Copy into an aligned buffer when the slice is not (a view of a larger buffer at an odd offset).
  const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  switch (e.dtype) {
    case 'BF16':
      return bf16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, count));
    case 'F16':
      return f16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, count));
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, count);
    case 'F64':
      return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, count));
    case 'I64':
      throw new Error(`${src.where(shard.file)}: tensor '${name}' is I64; expected a real tensor (BF16, F16, F32)`);
  }
}
