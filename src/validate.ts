// Shared validators for data that crosses a public boundary: checkpoint integrity (a checksum stored in the
// safetensors metadata), token ids against a vocabulary, and tensor shape/dtype expectations. Every error says what
// was expected, what was found, and where (file, tensor, config key).
//
// This module is browser-safe (no Node built-ins): the playground bundles the checkpoint code that uses it.
//
// Checksum: CRC-32 (IEEE 802.3, the one zip and PNG use) of every byte of the file, with the 8 hex digits of the
// checksum itself read as '0' — the same rule for the safetensors files (the checksum sits in the header's
// `__metadata__`) and the JSON files (a last key) of a run folder. So the header length, every metadata entry
// (a trainer state's step, sampler state and options), every tensor's name, dtype, shape and bytes, and the JSON
// files' every character are covered: a flipped bit anywhere is found. It detects damage (a flipped bit, a
// truncated copy, a file spliced from two writes, a hand edit); it is not a signature: a hostile file can carry a
// matching checksum, which is why the parser checks every header field against the bytes regardless
// (src/safetensors.ts) and the loaders check every value. CRC-32 in plain TypeScript (slicing by 4) runs at several
// hundred MB/s, so checking a checkpoint of a few MB costs milliseconds.

import { parseSafetensors, SafetensorsError, serializeSafetensors, type SafetensorsContents } from './safetensors.ts';
import type { DType, Tensor, TensorMap } from './tensor.ts';

/** The checksum's key: in the safetensors metadata, and the last key of config.json and run.json. */
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

/** What a file written before its checksum is sealed carries in place of the 8 hex digits. */
const PLACEHOLDER = 'crc32:00000000';
const ZEROS = new TextEncoder().encode('00000000');
const NEEDLE = new TextEncoder().encode(`"${CHECKSUM_KEY}"`);

/**
 * Whose file it is, which decides what a missing checksum means: every file this project writes carries one, so
 * for 'own' files its absence is damage (or a renamed key) and an error; a 'foreign' file (written by another tool,
 * e.g. a Hugging Face checkpoint) has none and loads with a warning.
 */
export type FileOrigin = 'own' | 'foreign';

/** The origin, or how to tell it from what the file says about itself (its metadata, its JSON keys). */
type OriginOf<T> = FileOrigin | ((said: T) => FileOrigin);

/** The result of checking a file's checksum: the checksum, or null and why not (foreign files only). */
export interface ChecksumCheck {
  checksum: string | null;
  warning?: string;
}

/**
 * Where the 8 hex digits of the checksum are in `bytes[from, to)`: after the one occurrence of the quoted key, a
 * colon (spaces allowed around it) and `"crc32:`. Returns the index, or why the checksum cannot be located.
 */
function digitsAt(bytes: Uint8Array, from: number, to: number): number | string {
  let at = -1;
  for (let i = from; i + NEEDLE.length <= to; i++) {
    let j = 0;
    while (j < NEEDLE.length && bytes[i + j] === NEEDLE[j]) j++;
    if (j < NEEDLE.length) continue;
    if (at >= 0) return `'${CHECKSUM_KEY}' appears more than once`;
    at = i + NEEDLE.length;
  }
  if (at < 0) return `'${CHECKSUM_KEY}' is not written as plain text`;
  const space = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
  while (at < to && space(bytes[at])) at++;
  if (bytes[at] !== 0x3a) return `no ':' after '${CHECKSUM_KEY}'`;
  at++;
  while (at < to && space(bytes[at])) at++;
  const prefix = '"crc32:';
  for (let j = 0; j < prefix.length; j++)
    if (bytes[at + j] !== prefix.charCodeAt(j)) return `'${CHECKSUM_KEY}' is not a "crc32:…" string`;
  at += prefix.length;
  if (at + 9 > to || bytes[at + 8] !== 0x22) return `'${CHECKSUM_KEY}' is not 8 hex digits`;
  return at;
}

/** CRC-32 of `bytes` with the 8 bytes at `at` read as '0'. */
function crcAround(bytes: Uint8Array, at: number): string {
  let c = crc32(bytes.subarray(0, at));
  c = crc32(ZEROS, c);
  c = crc32(bytes.subarray(at + 8), c);
  return `crc32:${c.toString(16).padStart(8, '0')}`;
}

/** Write the checksum of `bytes` into its placeholder (found in `bytes[from, to)`), in place; returns it. */
function seal(bytes: Uint8Array, from: number, to: number): string {
  const at = digitsAt(bytes, from, to);
  if (typeof at === 'string') throw new Error(`checksum writer: ${at}`);
  const sum = crcAround(bytes, at);
  bytes.set(new TextEncoder().encode(sum.slice(6)), at);
  return sum;
}

/**
 * Check the checksum of a file whose checksum should be inside `bytes[from, to)` (its header, or all of a JSON
 * file); `stored` is the value the parsed file gives for the key (undefined when it has none).
 */
function verifySealed(
  bytes: Uint8Array,
  from: number,
  to: number,
  stored: unknown,
  source: string,
  origin: FileOrigin,
): ChecksumCheck {
  const fail = (why: string) => new ChecksumError(why, source);
  if (stored === undefined) {
    if (origin === 'foreign')
      return {
        checksum: null,
        warning: `${source}: no ${CHECKSUM_KEY}: written by another tool, damage cannot be detected`,
      };
    throw fail(
      `no ${CHECKSUM_KEY}: every file monet-ts writes carries one, so this one was damaged or edited (a removed or ` +
        'renamed key); it is refused',
    );
  }
  if (typeof stored !== 'string' || !/^crc32:[0-9a-f]{8}$/.test(stored))
    throw fail(`${CHECKSUM_KEY} must be "crc32:" and 8 lower-case hex digits, found ${preview(stored)}`);
  const at = digitsAt(bytes, from, to);
  if (typeof at === 'string') throw fail(`the checksum cannot be located: ${at}`);
  const actual = crcAround(bytes, at);
  if (actual !== stored)
    throw fail(
      `checksum mismatch: ${CHECKSUM_KEY} says ${stored}, the file's bytes give ${actual}; the file was damaged or ` +
        'edited after it was written (disk, copy, a crash during a non-atomic copy, or a hand edit)',
    );
  return { checksum: actual };
}

/** A file's checksum is missing, misplaced or wrong. A SafetensorsError, so the callers' handling covers it. */
export class ChecksumError extends SafetensorsError {
  constructor(message: string, where: string) {
    super(message, where);
    this.name = 'ChecksumError';
  }
}

/** A short, shallow preview of a value from a file, for messages (never a whole nested value). */
function preview(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? '[…]' : '{…}';
}

/** A safetensors file with the checksum of all its bytes in `__metadata__` (the map order is the file order). */
export function serializeSealed(
  tensors: TensorMap,
  metadata: Record<string, string>,
): { bytes: Uint8Array; checksum: string } {
  const bytes = serializeSafetensors(tensors, { ...metadata, [CHECKSUM_KEY]: PLACEHOLDER });
  const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return { bytes, checksum: seal(bytes, 8, headerEnd) };
}

/** JSON text (2-space indent, newline at the end) with its checksum as the last key. */
export function sealedJson(value: object): string {
  return sealText(`${JSON.stringify({ ...value, [CHECKSUM_KEY]: PLACEHOLDER }, null, 2)}\n`);
}

/** JSON text whose checksum key holds the placeholder "crc32:00000000", with the checksum written in. */
export function sealText(text: string): string {
  const bytes = new TextEncoder().encode(text);
  seal(bytes, 0, bytes.length);
  return new TextDecoder().decode(bytes);
}

/**
 * Parse a JSON file this project may have sealed with sealedJson: the value without its checksum key, and the
 * check. Not a JSON object, or a checksum that does not match, is an error naming the file; `what` says what the
 * file should be ("a run folder's config.json").
 */
export function parseSealedJson(
  bytes: Uint8Array,
  source: string,
  origin: OriginOf<Record<string, unknown>>,
  what: string,
): { value: Record<string, unknown>; check: ChecksumCheck } {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new Error(`${source} is not valid JSON (${(e as Error).message}); expected ${what}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(
      `${source}: expected ${what} (a JSON object), found ${Array.isArray(raw) ? 'a list' : preview(raw)}`,
    );
  const { [CHECKSUM_KEY]: stored, ...value } = raw as Record<string, unknown>;
  const whose = typeof origin === 'function' ? origin(value) : origin;
  return { value, check: verifySealed(bytes, 0, bytes.length, stored, source, whose) };
}

/** parseSafetensors + the checksum check: the reader for checkpoints (own files, or foreign ones in a run folder). */
export function parseCheckpointBytes(
  bytes: Uint8Array,
  source: string,
  origin: OriginOf<Record<string, string>> = 'own',
): SafetensorsContents & ChecksumCheck {
  const contents = parseSafetensors(bytes, source);
  const whose = typeof origin === 'function' ? origin(contents.metadata) : origin;
  const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return { ...contents, ...verifySealed(bytes, 8, headerEnd, contents.metadata[CHECKSUM_KEY], source, whose) };
}

/**
 * The largest weight magnitude a model may hold: √(float32 max) ≈ 1.8e19, so that the square or the product of two
 * weights (RMSNorm squares its input, every matmul multiplies) is still a float32. A trained model's weights are of
 * order 1; a larger one is a forged or damaged file, whose outputs would overflow to NaN, or to zeros after a norm.
 */
export const MAX_WEIGHT = Math.sqrt(3.4028234663852886e38);

/**
 * The first value that is NaN or ±Infinity (or, with `maxAbs`, beyond ±maxAbs), described with its index, or null.
 */
export function badValue(data: ArrayLike<number>, maxAbs = Number.POSITIVE_INFINITY): string | null {
  // The scan only finds the index: a loop that also formats the value (a template string) makes V8 box every
  // element it reads, ten times slower (a 1.4B model's check took minutes).
  let i = 0;
  for (; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v) || Math.abs(v) > maxAbs) break;
  }
  return i < data.length ? describeBad(data[i], i, maxAbs) : null;
}

function describeBad(v: number, i: number, maxAbs: number): string {
  if (!Number.isFinite(v)) return `value ${v} at index ${i}`;
  return `value ${v} at index ${i} is beyond ±${maxAbs.toExponential(2)}, where float32 products overflow`;
}

/**
 * badValue for bfloat16 bit patterns (a 16-bit weight kept packed), without widening them: bfloat16 values grow with
 * their magnitude bits (the low 15), NaN and ±Infinity have the largest, so one comparison per element finds the
 * first value badValue would refuse; the message is badValue's. `first`: the index of bits[0] in the whole tensor.
 */
export function badBf16Value(bits: Uint16Array, maxAbs = Number.POSITIVE_INFINITY, first = 0): string | null {
  const value = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];
  // the smallest magnitude pattern that is refused: past maxAbs, or not finite (0x7f80 = Infinity)
  let lo = 0;
  let hi = 0x7f80;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (value(mid) > maxAbs) hi = mid;
    else lo = mid + 1;
  }
  let i = 0;
  for (; i < bits.length; i++) if ((bits[i] & 0x7fff) >= lo) break;
  return i < bits.length ? describeBad(value(bits[i]), first + i, maxAbs) : null;
}

/**
 * Refuse a tensor read from a file that holds NaN or ±Infinity (or a value beyond `maxAbs`), naming it (`where`),
 * the index and the value: a forged or damaged weight would otherwise turn every output into NaN or NUL bytes.
 */
export function checkFinite(data: ArrayLike<number>, where: string, maxAbs = Number.POSITIVE_INFINITY): void {
  const bad = badValue(data, maxAbs);
  if (bad) throw new Error(`${where}: ${bad}; expected finite numbers (the file is damaged or forged)`);
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
