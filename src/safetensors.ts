// safetensors reader and writer (https://huggingface.co/docs/safetensors), for the dtypes this project uses:
// F64, F32, I32, I64 and U8. Fixtures and checkpoints both travel in this format.
//
// File layout:
//   bytes 0..8        N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N      a UTF-8 JSON object:
//                     { "__metadata__": {string: string}?, "<name>": {dtype, shape, data_offsets} }
//                     (may be padded at the end with spaces)
//   bytes 8+N..end    the data area; data_offsets [begin, end) are relative to its start
//
// The reader never trusts the file. Every number in the header is checked against the bytes that are actually there
// BEFORE anything is allocated, so a header that lies about a shape or a length gives an error, not a 100 GB
// allocation. The checks are those of the reference Rust implementation: offsets inside the data area, end − begin
// equal to numel·itemsize, no two tensors sharing bytes, and every byte of the data area belonging to some tensor.
//
// All multi-byte values are little-endian. On a little-endian host (every platform Node and browsers run on today)
// tensor bytes are copied as they are; on a big-endian host they are decoded element by element through a DataView.

import { readFileSync, writeFileSync } from 'node:fs';
import { duplicateKey } from './json.ts';
import { numel, type DType, type TensorData, type TensorMap } from './tensor.ts';

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZE: Record<DType, number> = { F64: 8, F32: 4, I32: 4, I64: 8, U8: 1 };

/** dtypes that the safetensors format defines but this project does not read (named so the error can say so). */
const KNOWN_UNSUPPORTED = [
  'BOOL',
  'I8',
  'I16',
  'U16',
  'U32',
  'U64',
  'F16',
  'BF16',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F4',
  'F6_E2M3',
  'F6_E3M2',
  'C64',
];

/** Refuse headers larger than this: real headers are kilobytes; a bigger number means a damaged or hostile file. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** An error in a safetensors file. `where` names the file and, when known, the tensor or header field. */
export class SafetensorsError extends Error {
  constructor(
    message: string,
    readonly where: string,
  ) {
    super(`${where}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface SafetensorsContents {
  /** The `__metadata__` map (empty when the file has none). */
  metadata: Record<string, string>;
  /** Tensors in the order of their data offsets (the order they are stored in). */
  tensors: TensorMap;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDType(s: string): s is DType {
  return Object.hasOwn(DTYPE_SIZE, s);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  // Never JSON.stringify a value from the file as a whole: a hostile header can nest arrays thousands deep, which
  // JSON.parse accepts but a recursive stringify overflows the stack on. Show the length and a few plain elements.
  if (Array.isArray(v)) {
    const head = v
      .slice(0, 8)
      .map((x) => (x !== null && typeof x === 'object' ? (Array.isArray(x) ? '[…]' : '{…}') : String(x)));
    return (
      `an array of ${v.length} element${v.length === 1 ? '' : 's'} ` +
      `[${head.join(', ')}${v.length > 8 ? ', …' : ''}]`
    );
  }
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Decode `count` elements of `dtype` starting at `bytes[offset]` into a fresh typed array (always a copy). */
function decode(bytes: Uint8Array, offset: number, dtype: DType, count: number): TensorData {
  const size = DTYPE_SIZE[dtype];
  const buf = new ArrayBuffer(count * size);
  if (LITTLE_ENDIAN_HOST || size === 1) {
    // Copy into a fresh, aligned buffer: the source offset need not be a multiple of the element size.
    new Uint8Array(buf).set(bytes.subarray(offset, offset + count * size));
  } else {
    const src = new DataView(bytes.buffer, bytes.byteOffset + offset, count * size);
    const dst = new DataView(buf);
    for (let i = 0; i < count; i++) {
      const o = i * size;
      if (size === 8) dst.setBigUint64(o, src.getBigUint64(o, true));
      else dst.setUint32(o, src.getUint32(o, true));
    }
  }
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf);
    case 'F32':
      return new Float32Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
    case 'U8':
      return new Uint8Array(buf);
  }
}

/** The little-endian bytes of a typed array (a view when possible). */
function encode(data: TensorData): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN_HOST || data.BYTES_PER_ELEMENT === 1) return bytes;
  const size = data.BYTES_PER_ELEMENT;
  const out = new Uint8Array(bytes.length);
  const src = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const dst = new DataView(out.buffer);
  for (let o = 0; o < bytes.length; o += size) {
    if (size === 8) dst.setBigUint64(o, src.getBigUint64(o), true);
    else dst.setUint32(o, src.getUint32(o), true);
  }
  return out;
}

const ARRAY_FOR: Record<DType, string> = {
  F64: 'Float64Array',
  F32: 'Float32Array',
  I32: 'Int32Array',
  I64: 'BigInt64Array',
  U8: 'Uint8Array',
};

/** One tensor of a checked header: data_offsets [begin, end) relative to the data area. */
export interface HeaderEntry<D extends string = DType> {
  name: string;
  dtype: D;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Check a parsed header against a data area of `dataLen` bytes (every check described at the top of this file) and
 * return the metadata and the tensors sorted by position. `sizes` is the dtype table the caller reads: bytes per
 * element of each dtype it accepts (the 16-bit Hugging Face weights use a wider table than fixtures do).
 */
export function checkHeader<D extends string>(
  header: Record<string, unknown>,
  dataLen: number,
  source: string,
  sizes: Record<D, number>,
): { metadata: Record<string, string>; entries: HeaderEntry<D>[] } {
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry<D>[] = [];

  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Array.isArray(info)) {
        throw new SafetensorsError(
          `__metadata__ must be an object of string → string, found ${describe(info)}`,
          source,
        );
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string')
          throw new SafetensorsError(`__metadata__.${k} must be a string, found ${describe(v)}`, source);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${source}: tensor '${name}'`;
    if (info === null || typeof info !== 'object' || Array.isArray(info)) {
      throw new SafetensorsError(`expected {dtype, shape, data_offsets}, found ${describe(info)}`, where);
    }
    const rec = info as Record<string, unknown>;
    for (const k of Object.keys(rec)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') {
        throw new SafetensorsError(`unexpected field '${k}'; expected only dtype, shape and data_offsets`, where);
      }
    }
    const dtype = rec.dtype;
    if (typeof dtype !== 'string')
      throw new SafetensorsError(`dtype must be a string, found ${describe(dtype)}`, where);
    if (!Object.hasOwn(sizes, dtype)) {
      const supported = Object.keys(sizes).join(', ');
      throw new SafetensorsError(
        KNOWN_UNSUPPORTED.includes(dtype)
          ? `dtype ${dtype} is valid safetensors but not supported here; expected one of ${supported}`
          : `unknown dtype ${JSON.stringify(dtype)}; expected one of ${supported}`,
        where,
      );
    }
    const shape = rec.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new SafetensorsError(`shape must be an array of non-negative integers, found ${describe(shape)}`, where);
    }
    const offs = rec.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt)) {
      throw new SafetensorsError(
        `data_offsets must be [begin, end] with non-negative integers, found ${describe(offs)}`,
        where,
      );
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) throw new SafetensorsError(`data_offsets [${begin}, ${end}]: begin is after end`, where);
    if (end > dataLen) {
      throw new SafetensorsError(
        `data_offsets [${begin}, ${end}] run past the data area, which has ${dataLen} bytes (file truncated?)`,
        where,
      );
    }
    // numel·itemsize is compared with the byte range the file really has, so the shape cannot request more memory
    // than the file holds. Multiply in floating point: an absurd shape gives a huge (or infinite) number, never a wrap.
    let n = 1;
    for (const s of shape as number[]) n *= s;
    const want = n * sizes[dtype as D];
    if (want !== end - begin) {
      throw new SafetensorsError(
        `shape [${shape}] of ${dtype} needs ${want} bytes, but data_offsets [${begin}, ${end}] span ${end - begin} ` +
          `bytes`,
        where,
      );
    }
    entries.push({ name, dtype: dtype as D, shape: (shape as number[]).slice(), begin, end });
  }

  // Sorted by position, the tensors must tile the data area exactly: no gaps (unaccounted bytes), no overlaps.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin < pos) {
      const prev = entries[entries.indexOf(e) - 1];
      throw new SafetensorsError(
        `data_offsets [${e.begin}, ${e.end}] overlap those of tensor '${prev.name}' [${prev.begin}, ${prev.end}]`,
        `${source}: tensor '${e.name}'`,
      );
    }
    if (e.begin > pos) {
      throw new SafetensorsError(
        `bytes ${pos}..${e.begin} of the data area belong to no tensor (expected tensor '${e.name}' to start at ` +
          `${pos})`,
        source,
      );
    }
    pos = e.end;
  }
  if (pos !== dataLen) {
    throw new SafetensorsError(
      `the tensors cover ${pos} bytes of the data area but it has ${dataLen} bytes; expected every byte to belong ` +
        `to a tensor`,
      source,
    );
  }

  return { metadata, entries };
}

/**
 * Parse a safetensors file held in memory. `source` (a file name) is used in every error message.
 * Throws SafetensorsError with what was expected, what was found and where.
 */
export function parseSafetensors(bytes: Uint8Array, source = '<memory>'): SafetensorsContents {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `expected at least 8 bytes (the header length), found a file of ${bytes.length} bytes; not a safetensors file ` +
        `or truncated`,
      source,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  const maxHeader = Math.min(MAX_HEADER_BYTES, bytes.length - 8);
  if (headerLen64 > BigInt(maxHeader)) {
    const why =
      headerLen64 > BigInt(MAX_HEADER_BYTES)
        ? `at most ${MAX_HEADER_BYTES} bytes`
        : `at most ${bytes.length - 8} bytes (the file is ${bytes.length} bytes)`;
    throw new SafetensorsError(
      `header length (first 8 bytes, little-endian) says ${headerLen64} bytes; expected ${why}; not a safetensors ` +
        `file or truncated`,
      source,
    );
  }
  const headerLen = Number(headerLen64);
  if (headerLen < 2)
    throw new SafetensorsError(`header length is ${headerLen}; expected a JSON object of at least 2 bytes`, source);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    throw new SafetensorsError(`header (bytes 8..${8 + headerLen}) is not valid UTF-8; not a safetensors file`, source);
  }
  if (!text.startsWith('{')) {
    throw new SafetensorsError(
      `header must be a JSON object starting with '{', found ${JSON.stringify(text.slice(0, 20))}; not a ` +
        `safetensors file`,
      source,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON (${(e as Error).message})`, source);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError(`header must be a JSON object, found ${describe(header)}`, source);
  }
  const dup = duplicateKey(text);
  if (dup) {
    throw new SafetensorsError(
      `header: key ${JSON.stringify(dup.key)} appears twice in ${dup.path}; expected each key once (a reader ` +
        'keeping the first value and one keeping the last would read different files)',
      source,
    );
  }

  const dataStart = 8 + headerLen;
  const { metadata, entries } = checkHeader(
    header as Record<string, unknown>,
    bytes.length - dataStart,
    source,
    DTYPE_SIZE,
  );
  const tensors: TensorMap = new Map();
  for (const e of entries) {
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      data: decode(bytes, dataStart + e.begin, e.dtype, numel(e.shape)),
    });
  }
  return { metadata, tensors };
}

/**
 * Serialise tensors (in the map's order) and string metadata. The header is padded with spaces to a multiple of 8
 * bytes so that the data area is 8-byte aligned, as the reference writer does.
 */
export function serializeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        throw new Error(`safetensors writer: metadata '${k}' must be a string, found ${describe(v)}`);
    }
    header.__metadata__ = metadata;
  }
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error(`safetensors writer: '__metadata__' cannot be a tensor name`);
    if (!isDType(t.dtype))
      throw new Error(`safetensors writer: tensor '${name}' has unsupported dtype ${String(t.dtype)}`);
    if (!t.shape.every(isNonNegInt))
      throw new Error(`safetensors writer: tensor '${name}' has shape [${t.shape}]; expected non-negative integers`);
    if (t.data.constructor.name !== ARRAY_FOR[t.dtype]) {
      throw new Error(
        `safetensors writer: tensor '${name}' is ${t.dtype} but its data is a ${t.data.constructor.name}; expected ` +
          `${ARRAY_FOR[t.dtype]}`,
      );
    }
    if (t.data.length !== numel(t.shape)) {
      throw new Error(
        `safetensors writer: tensor '${name}' has shape [${t.shape}] (${numel(t.shape)} values) but ` +
          `${t.data.length} values`,
      );
    }
    const b = encode(t.data);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + b.length] };
    parts.push(b);
    offset += b.length;
  }
  const json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  if (hb.length % 8 !== 0) hb = enc.encode(json + ' '.repeat(8 - (hb.length % 8)));
  const out = new Uint8Array(8 + hb.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const b of parts) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/** Read and parse a safetensors file; errors name the path. */
export function readSafetensors(path: string): SafetensorsContents {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(`cannot read file (${(e as Error).message})`, path);
  }
  return parseSafetensors(bytes, path);
}

export function writeSafetensors(path: string, tensors: TensorMap, metadata: Record<string, string> = {}): void {
  writeFileSync(path, serializeSafetensors(tensors, metadata));
}
