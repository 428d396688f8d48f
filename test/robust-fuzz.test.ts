// Fuzz test: thousands of damaged and hostile safetensors files, generated from real fixtures with a fixed seed.
//
// What must hold for every file, whatever its bytes:
//   - parseSafetensors either returns, or throws SafetensorsError (never a RangeError, TypeError, stack overflow…);
//   - what it returns is no bigger than the file: the header cannot make the reader allocate more than it read;
//   - parseFixture throws only the file-error types (`monet check` maps them to exit 2), never anything else;
//   - nothing hangs: the whole run is bounded by the test runner, and each file is small.
// A failure prints the case number and mutation, so it can be replayed (the generator is deterministic).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, SafetensorsError } from '../src/safetensors.ts';
import { isFileError, parseFixture } from '../src/fixtures/format.ts';
import { parseCheckpointBytes } from '../src/validate.ts';
import { loadModel, loadTrainerState, saveCheckpoint } from '../src/train/checkpoint.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';

/** xorshift128+-style deterministic generator (its own, so that the sequence never depends on project code). */
function rng(seed: number) {
  let a = seed >>> 0 || 1;
  let b = 0x9e3779b9;
  return {
    u32(): number {
      // xorshift32 on two words, combined
      a ^= a << 13;
      a >>>= 0;
      a ^= a >>> 17;
      a ^= a << 5;
      a >>>= 0;
      b = (b + 0x6d2b79f5) >>> 0;
      return (a ^ b) >>> 0;
    },
    int(n: number): number {
      return this.u32() % n;
    },
    pick<T>(xs: readonly T[]): T {
      return xs[this.int(xs.length)];
    },
  };
}
type Rng = ReturnType<typeof rng>;

const SEEDS = [
  'fixtures/dense-ffn/swiglu.safetensors',
  'fixtures/smoe/gelu_e4k1_noaux.safetensors',
  'fixtures/monet-vd/train.safetensors',
  'fixtures/peer/train_relu.safetensors',
  'fixtures/lm/dense_relu2_tied.safetensors',
].map((p) => ({ path: p, bytes: new Uint8Array(readFileSync(p)) }));

function headerOf(bytes: Uint8Array): { len: number; json: Record<string, unknown>; data: Uint8Array } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len)));
  return { len, json, data: bytes.subarray(8 + len) };
}

function assemble(header: string, data: Uint8Array, lenOverride?: bigint): Uint8Array {
  const hb = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

const NASTY_NUMBERS: unknown[] = [
  -1,
  0,
  1,
  2,
  3,
  7,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 32 + 1,
  2 ** 53,
  2 ** 53 + 2,
  1e300,
  -1e300,
  1e21,
  4294967295,
  '5',
  null,
  true,
  [],
  {},
  [1],
  'F32',
];
const NASTY_DTYPES: unknown[] = [
  'F16',
  'BF16',
  'BOOL',
  'f32',
  'F64 ',
  '',
  'F128',
  5,
  null,
  ['F32'],
  { F32: 1 },
  '__proto__',
  'constructor',
];

/** JSON-aware mutation of the header of a real file: keeps the file well-formed except for the one lie it tells. */
function mutateHeader(r: Rng, bytes: Uint8Array): { what: string; out: Uint8Array } {
  const { json, data } = headerOf(bytes);
  const names = Object.keys(json).filter((n) => n !== '__metadata__');
  const name = r.pick(names);
  const info = { ...(json[name] as Record<string, unknown>) };
  const shape = [...(info.shape as number[])];
  const offs = [...(info.data_offsets as number[])];
  const choice = r.int(16);
  let what = '';
  let d = data;
  switch (choice) {
    case 0:
      what = `dtype of ${name}`;
      info.dtype = r.pick(NASTY_DTYPES);
      break;
    case 1:
      what = `a shape entry of ${name}`;
      if (shape.length) shape[r.int(shape.length)] = r.pick(NASTY_NUMBERS) as number;
      else shape.push(r.pick(NASTY_NUMBERS) as number);
      info.shape = shape;
      break;
    case 2:
      what = `an offset of ${name}`;
      offs[r.int(2)] = r.pick(NASTY_NUMBERS) as number;
      info.data_offsets = offs;
      break;
    case 3:
      what = `offsets of ${name} moved by a few bytes`;
      {
        const k = r.int(17) - 8;
        info.data_offsets = [offs[0] + k, offs[1] + k];
      }
      break;
    case 4:
      what = `${name} overlaps another tensor`;
      {
        const other = json[r.pick(names)] as { data_offsets: number[] };
        info.data_offsets = [...other.data_offsets];
      }
      break;
    case 5:
      what = `huge shape for ${name}`;
      info.shape = [2 ** 26, 2 ** 26, 2 ** 26];
      break;
    case 6:
      what = `shape of ${name} nested deep`;
      // deliberately not a shape: a marker the deep nesting replaces in the header text below
      info.shape = '__DEEP__' as unknown as number[];
      break; // spliced in below
    case 7:
      what = `shape of ${name} a long array`;
      info.shape = new Array(100000).fill(1);
      break;
    case 8:
      what = `extra field in ${name}`;
      info[r.pick(['offsets', 'data', '__proto__', 'dtype '])] = 1;
      break;
    case 9:
      what = `metadata not strings`;
      json.__metadata__ = r.pick([{ a: 1 }, [], 'x', null, { k: { deep: [1, 2] } }, 5]);
      break;
    case 10:
      what = 'metadata huge';
      json.__metadata__ = { big: 'x'.repeat(200000), ...(json.__metadata__ as object) };
      break;
    case 11:
      what = 'metadata config not JSON';
      json.__metadata__ = {
        ...(json.__metadata__ as object),
        config: r.pick(['{', '[]', 'null', '{"hidden_size": -1}', '{"hidden_size": 1e400}', '"x"']),
      };
      break;
    case 12:
      what = 'data area cut short';
      d = data.subarray(0, r.int(data.length));
      break;
    case 13:
      what = 'data area padded';
      d = new Uint8Array(data.length + 1 + r.int(16));
      d.set(data);
      break;
    case 14:
      what = `${name} replaced by a non-object`;
      json[name] = r.pick(NASTY_NUMBERS);
      break;
    case 15:
      what = 'many empty tensors';
      for (let i = 0; i < 2000; i++) json[`e${i}`] = { dtype: 'U8', shape: [0], data_offsets: [0, 0] };
      break;
  }
  if (choice !== 14 && choice !== 9 && choice !== 10 && choice !== 11 && choice !== 15) json[name] = info;
  // Deep nesting is spliced into the text: building it as a value would overflow JSON.stringify in this test itself.
  const text = JSON.stringify(json).replace('"__DEEP__"', `${'['.repeat(20000)}1${']'.repeat(20000)}`);
  return { what, out: assemble(text, d) };
}

function mutateBytes(r: Rng, bytes: Uint8Array): { what: string; out: Uint8Array } {
  const out = bytes.slice();
  switch (r.int(7)) {
    case 0: {
      const n = r.int(bytes.length);
      return { what: `truncated to ${n} bytes`, out: bytes.slice(0, n) };
    }
    case 1: {
      const k = 1 + r.int(8);
      for (let i = 0; i < k; i++) {
        const p = r.int(out.length);
        out[p] ^= 1 << r.int(8);
      }
      return { what: `${k} bit flips anywhere`, out };
    }
    case 2: {
      const hl = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
      const k = 1 + r.int(4);
      for (let i = 0; i < k; i++) {
        const p = 8 + r.int(hl);
        out[p] = r.int(256);
      }
      return { what: `${k} random bytes in the header`, out };
    }
    case 3: {
      const v = r.pick([
        0n,
        1n,
        2n,
        7n,
        2n ** 63n,
        2n ** 64n - 1n,
        BigInt(bytes.length),
        BigInt(bytes.length - 8),
        BigInt(r.int(bytes.length)),
        100n * 1024n * 1024n + 1n,
      ]);
      new DataView(out.buffer).setBigUint64(0, v, true);
      return { what: `header length set to ${v}`, out };
    }
    case 4: {
      const n = r.int(64);
      const g = new Uint8Array(n);
      for (let i = 0; i < n; i++) g[i] = r.int(256);
      return { what: `${n} random bytes`, out: g };
    }
    case 5: {
      const p = r.int(bytes.length);
      const n = 1 + r.int(16);
      return {
        what: `${n} bytes deleted at ${p}`,
        out: new Uint8Array([...bytes.subarray(0, p), ...bytes.subarray(p + n)]),
      };
    }
    default: {
      const p = r.int(bytes.length);
      const ins = Array.from({ length: 1 + r.int(16) }, () => r.int(256));
      return {
        what: `${ins.length} bytes inserted at ${p}`,
        out: new Uint8Array([...bytes.subarray(0, p), ...ins, ...bytes.subarray(p)]),
      };
    }
  }
}

/** Hand-built hostile headers that random mutation rarely reaches (each checked once). */
const HOSTILE: [string, () => Uint8Array][] = [
  ['JSON nested 100k deep', () => assemble(`{"a":${'['.repeat(100000)}${']'.repeat(100000)}}`, new Uint8Array(0))],
  ['header of spaces', () => assemble(' '.repeat(64), new Uint8Array(0))],
  ['header is an array', () => assemble('[1,2,3]', new Uint8Array(0))],
  ['header is a string', () => assemble('"{}"', new Uint8Array(0))],
  [
    'invalid UTF-8 in the header',
    () => {
      const b = assemble('{"a":1}', new Uint8Array(0));
      b[10] = 0xff;
      return b;
    },
  ],
  [
    'NUL bytes in the header',
    () => assemble('{"a\u0000":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
  ],
  [
    '__proto__ tensor',
    () => assemble('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
  ],
  ['__proto__ metadata key', () => assemble('{"__metadata__":{"__proto__":"x","constructor":"y"}}', new Uint8Array(0))],
  [
    'duplicate keys',
    () =>
      assemble(
        '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}',
        new Uint8Array(1),
      ),
  ],
  [
    'shape product overflows 2^53',
    () =>
      assemble(
        JSON.stringify({ a: { dtype: 'F64', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }),
        new Uint8Array(8),
      ),
  ],
  [
    'shape with a zero and a huge axis (0 bytes, fine)',
    () =>
      assemble(JSON.stringify({ a: { dtype: 'F64', shape: [0, 2 ** 52], data_offsets: [0, 0] } }), new Uint8Array(0)),
  ],
  [
    'exponent numbers',
    () => assemble('{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0e5,1E0]}}', new Uint8Array(1)),
  ],
  [
    '100k tensors',
    () => {
      const h: Record<string, unknown> = {};
      for (let i = 0; i < 100000; i++) h[`t${i}`] = { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] };
      return assemble(JSON.stringify(h), new Uint8Array(100000));
    },
  ],
  [
    '100k tensors, the last overlapping',
    () => {
      const h: Record<string, unknown> = {};
      for (let i = 0; i < 100000; i++) h[`t${i}`] = { dtype: 'U8', shape: [1], data_offsets: [i, i + 1] };
      h.t99999 = { dtype: 'U8', shape: [1], data_offsets: [5, 6] };
      return assemble(JSON.stringify(h), new Uint8Array(100000));
    },
  ],
  [
    'header length 100 MB + 1',
    () => {
      const b = assemble('{}', new Uint8Array(0));
      new DataView(b.buffer).setBigUint64(0, 100n * 1024n * 1024n + 1n, true);
      return b;
    },
  ],
];

function checkOne(label: string, bytes: Uint8Array): void {
  let parsed: ReturnType<typeof parseSafetensors>;
  try {
    parsed = parseSafetensors(bytes, 'fuzz.safetensors');
  } catch (e) {
    if (!(e instanceof SafetensorsError)) {
      assert.unreachable(
        `${label}: parseSafetensors threw ${(e as Error)?.name}: ${(e as Error)?.message?.slice(0, 300)}`,
      );
    }
    assert.match((e as Error).message, /^fuzz\.safetensors/, `${label}: the error names the file`);
    return;
  }
  let total = 0;
  for (const [, t] of parsed.tensors) total += t.data.byteLength;
  assert.ok(total <= bytes.length, `${label}: returned ${total} bytes of tensors from a file of ${bytes.length}`);
  try {
    parseFixture(bytes, 'fuzz.safetensors');
  } catch (e) {
    if (!isFileError(e))
      assert.unreachable(
        `${label}: parseFixture threw ${(e as Error)?.name}: ${(e as Error)?.message?.slice(0, 300)}\n` +
          `${(e as Error)?.stack}`,
      );
  }
  try {
    parseCheckpointBytes(bytes, 'fuzz.safetensors');
  } catch (e) {
    if (!(e instanceof SafetensorsError))
      assert.unreachable(
        `${label}: parseCheckpointBytes threw ${(e as Error)?.name}: ${(e as Error)?.message?.slice(0, 300)}`,
      );
  }
}

test('the seed files are valid (so that every mutation starts from a real file)', () => {
  for (const s of SEEDS) parseFixture(s.bytes, s.path);
});

test('5000 mutated and truncated real files: only SafetensorsError / fixture errors, never a crash', () => {
  const r = rng(20261123);
  const N = 5000;
  const kinds = { bytes: 0, header: 0 };
  for (let i = 0; i < N; i++) {
    const seed = r.pick(SEEDS);
    const bytesKind = r.int(2) === 0;
    const m = bytesKind ? mutateBytes(r, seed.bytes) : mutateHeader(r, seed.bytes);
    kinds[bytesKind ? 'bytes' : 'header']++;
    checkOne(`case ${i} (${seed.path}: ${m.what})`, m.out);
  }
  assert.ok(kinds.bytes > 2000 && kinds.header > 2000, JSON.stringify(kinds));
});

test('hand-built hostile headers: deep nesting, prototype keys, duplicate keys, huge shapes, 100k tensors', () => {
  for (const [what, make] of HOSTILE) checkOne(what, make());
});

test('every truncation of a real fixture is refused with a clear error', () => {
  const s = SEEDS[0].bytes;
  for (let n = 0; n < s.length; n += 1 + (n >> 6)) {
    try {
      parseSafetensors(s.subarray(0, n), 'cut.safetensors');
      assert.unreachable(`a file cut to ${n} of ${s.length} bytes was accepted`);
    } catch (e) {
      assert.instance(e, SafetensorsError, `cut to ${n}`);
      assert.match((e as Error).message, /expected|truncated|run past|cover/);
    }
  }
});

test('checkpoint loader on 1000 damaged model, trainer-state, config files: an Error naming the file, no crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'monet-fuzz-ckpt-'));
  try {
    const config = getPreset('tiny').config;
    const { params, state } = initParams(config, 5);
    saveCheckpoint(dir, config, 'bytes', params, state, {
      step: 3,
      sampler: { rng: [1, 2, 3, 4], batches: 3 },
      info: {},
      m: params,
      v: new Map([...params].map(([k, a]) => [k, a.map((x) => x * x)])), // second moments are ≥ 0
    });
    const files = ['model.safetensors', 'trainer_state.safetensors', 'config.json'].map((n) => ({
      n,
      path: join(dir, n),
      bytes: new Uint8Array(readFileSync(join(dir, n))),
    }));
    const r = rng(7);
    let refused = 0;
    let unchanged = 0;
    for (let i = 0; i < 1000; i++) {
      const f = r.pick(files);
      const m = mutateBytes(r, f.bytes);
      if (Buffer.from(m.out).equals(Buffer.from(f.bytes))) {
        unchanged++; // a mutation that wrote the same bytes back
        continue;
      }
      writeFileSync(f.path, m.out);
      try {
        const ck = loadModel(dir);
        loadTrainerState(dir, ck.config);
      } catch (e) {
        const err = e as Error;
        if (
          !(err instanceof Error) ||
          err.name === 'RangeError' ||
          err.name === 'TypeError' ||
          !err.message.includes(f.path)
        ) {
          assert.unreachable(`case ${i} (${f.n}: ${m.what}): ${err?.name}: ${err?.message?.slice(0, 300)}`);
        }
        refused++;
      } finally {
        writeFileSync(f.path, f.bytes);
      }
    }
    // Every changed file must be refused: the checksum covers every byte of each file.
    assert.is(refused, 1000 - unchanged, `${refused} of ${1000 - unchanged} damaged files refused`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
