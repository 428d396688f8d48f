// Shared validators for data that crosses a public boundary: checkpoint integrity (a checksum stored in the
// safetensors metadata), token ids against a vocabulary, and tensor shape/dtype expectations. Every error says what
// was expected, what was found, and where (file, tensor, config key).
//
// This module is browser-safe (no Node built-ins): the playground bundles the checkpoint code that uses it.
//
// Checksum: CRC-32 (IEEE 802.3, the one zip and PNG use) over every tensor's name, dtype, shape and little-endian
// bytes, in file order. It detects damage (a flipped bit, a truncated copy, a file spliced from two writes); it is
// not a signature: a hostile file can carry a matching checksum, which is why the parser checks every header field
// against the bytes regardless (src/safetensors.ts). CRC-32 in plain TypeScript (slicing by 4) runs at several
// hundred MB/s, so checking a checkpoint of a few MB costs milliseconds.

import { parseSafetensors, SafetensorsError, type SafetensorsContents } from './safetensors.ts';
import type { DType, Tensor, TensorMap } from './tensor.ts';

/** Metadata key of the checksum in files this project writes. */
export const CHECKSUM_KEY = 'monet_ts_checksum';

// ---------------------------------------------------------------------------------------------------------------
// CRC-32

/** T[k][b]: CRC of byte b followed by k zero bytes; slicing-by-4 processes four bytes per table round. */
const CRC_TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const ts = [t0];
  for (let k = 1; k < 4; k++) {
    const prev = ts[k - 1];
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (prev[n] >>> 8) ^ t0[prev[n] & 0xff];
    ts.push(t);
  }
  return ts;
})();

/** Running CRC-32: pass the previous return value to continue over more bytes (start with 0). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  const [t0, t1, t2, t3] = CRC_TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const n4 = bytes.length - (bytes.length % 4);
  for (; i < n4; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t3[c & 0xff] ^ t2[(c >>> 8) & 0xff] ^ t1[(c >>> 16) & 0xff] ^ t0[c >>> 24];
  }
  for (; i < bytes.length; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The little-endian bytes of a tensor's data (a view on little-endian hosts). */
function leBytes(t: Tensor): Uint8Array {
  const d = t.data;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (LITTLE_ENDIAN_HOST || d.BYTES_PER_ELEMENT === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  const size = d.BYTES_PER_ELEMENT;
  for (let o = 0; o < bytes.length; o += size) for (let j = 0; j < size; j++) out[o + j] = bytes[o + size - 1 - j];
  return out;
}

/** `crc32:xxxxxxxx` over every tensor's name, dtype, shape and bytes, in the map's order. */
export function tensorsChecksum(tensors: TensorMap): string {
  const enc = new TextEncoder();
  let c = 0;
  for (const [name, t] of tensors) {
    c = crc32(enc.encode(`${name}\u0000${t.dtype}\u0000${t.shape.join(',')}\u0000`), c);
    c = crc32(leBytes(t), c);
  }
  return `crc32:${c.toString(16).padStart(8, '0')}`;
}

/** Metadata with the checksum of `tensors` added (the map order must be the order they are written in). */
export function withChecksum(tensors: TensorMap, metadata: Record<string, string>): Record<string, string> {
  return { ...metadata, [CHECKSUM_KEY]: tensorsChecksum(tensors) };
}

/**
 * Verify the checksum of parsed contents, if the file carries one. Returns the checksum, or null when the file has
 * none (a file written by another tool). A mismatch throws SafetensorsError naming the file and both values.
 */
export function verifyChecksum(contents: SafetensorsContents, source: string): string | null {
  const stored = contents.metadata[CHECKSUM_KEY];
  if (stored === undefined) return null;
  const actual = tensorsChecksum(contents.tensors);
  if (stored !== actual) {
    throw new SafetensorsError(
      `checksum mismatch: __metadata__.${CHECKSUM_KEY} says ${JSON.stringify(stored.slice(0, 40))}, the tensors give ${actual}; ` +
        'the file was damaged after it was written (disk, copy or a crash during a non-atomic copy)',
      source,
    );
  }
  return actual;
}

/** parseSafetensors + verifyChecksum: the reader for checkpoints this project writes. */
export function parseCheckpointBytes(
  bytes: Uint8Array,
  source: string,
): SafetensorsContents & { checksum: string | null } {
  const contents = parseSafetensors(bytes, source);
  return { ...contents, checksum: verifyChecksum(contents, source) };
}

// ---------------------------------------------------------------------------------------------------------------
// Token ids and tensors

/**
 * Every id in [0, V). The error names the first bad id, its position (batch row and column when S is given) and
 * where the ids came from; an out-of-range id would otherwise read past the embedding table on a device.
 */
export function checkTokenIds(tokens: ArrayLike<number>, V: number, where: string, S?: number): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!(Number.isInteger(t) && t >= 0 && t < V)) {
      const at = S ? `row ${Math.floor(i / S)}, position ${i % S}` : `index ${i}`;
      throw new RangeError(`${where}: token id ${t} at ${at} is outside the vocabulary [0, ${V}) (vocab_size ${V})`);
    }
  }
}

/** A tensor of the expected dtype(s) and shape; `where` names it (file and tensor). */
export function expectTensor(
  t: Tensor | undefined,
  where: string,
  shape: readonly number[],
  dtypes: readonly DType[],
): Tensor {
  if (!t) throw new Error(`${where}: missing; expected a ${dtypes.join(' or ')} tensor of shape [${shape}]`);
  if (!dtypes.includes(t.dtype)) throw new Error(`${where}: expected dtype ${dtypes.join(' or ')}, found ${t.dtype}`);
  if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
    throw new Error(`${where}: expected shape [${shape}], found [${t.shape}]`);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// JSON from files

/**
 * How deeply a parsed JSON value nests (a number or string is 0, `{}` or `[]` is 1), counted without recursion and
 * stopping once `limit` is exceeded. JSON.parse accepts arrays nested a million deep; any code that later walks or
 * stringifies such a value recursively overflows the stack, so files with small, flat schemas are checked first.
 */
export function jsonDepth(v: unknown, limit: number): number {
  let max = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    const depth = d + 1;
    if (depth > max) max = depth;
    if (max > limit) return max;
    for (const child of Object.values(x as Record<string, unknown>)) stack.push([child, depth]);
  }
  return max;
}
