// The safetensors reader/writer: round trips for every dtype, and every way a file can lie or be damaged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSafetensors, serializeSafetensors, SafetensorsError } from '../src/safetensors.ts';
import type { Tensor, TensorMap } from '../src/tensor.ts';

/** A safetensors file built by hand (header JSON + data bytes), independent of the writer under test. */
function handmade(header: unknown, data: Uint8Array = new Uint8Array(0), headerLenOverride?: bigint): Uint8Array {
  const hb = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

function throwsWith(fn: () => unknown, ...patterns: RegExp[]): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, SafetensorsError);
    for (const p of patterns) assert.match((e as Error).message, p);
    return;
  }
  assert.unreachable('expected a SafetensorsError');
}

test('round trip of every dtype, 0-d and empty tensors, with metadata', () => {
  const m: TensorMap = new Map<string, Tensor>([
    ['f64', { dtype: 'F64', shape: [2, 3], data: Float64Array.from([1.5, -2, 3e-300, Math.PI, -0, 1e300]) }],
    ['f32', { dtype: 'F32', shape: [3], data: Float32Array.from([0.1, -7, 65504]) }],
    ['i32', { dtype: 'I32', shape: [2, 2], data: Int32Array.from([-2147483648, 2147483647, 0, -1]) }],
    ['i64', { dtype: 'I64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 62n + 3n]) }],
    ['u8', { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 255, 7, 1]) }],
    ['scalar', { dtype: 'F64', shape: [], data: Float64Array.from([42]) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const bytes = serializeSafetensors(m, { format: 'x/1', note: 'ü' });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(headerLen % 8, 0, 'header padded so the data area is 8-byte aligned');
  const r = parseSafetensors(bytes, 'rt');
  assert.equal(r.metadata, { format: 'x/1', note: 'ü' });
  assert.equal([...r.tensors.keys()].sort(), [...m.keys()].sort());
  for (const [name, t] of m) {
    const u = r.tensors.get(name)!;
    assert.is(u.dtype, t.dtype, name);
    assert.equal(u.shape, t.shape, name);
    assert.is(u.data.constructor, t.data.constructor, name);
    assert.equal(Array.from(u.data as ArrayLike<number>), Array.from(t.data as ArrayLike<number>), name);
  }
  assert.is(Object.is((r.tensors.get('f64')!.data as Float64Array)[4], -0), true, 'negative zero kept bit-exactly');
});

test('reads little-endian bytes written by hand, at unaligned offsets, in any order', () => {
  const data = new Uint8Array(1 + 8 + 4);
  const dv = new DataView(data.buffer);
  data[0] = 9; // U8 first: the F64 starts at offset 1 (unaligned)
  dv.setFloat64(1, -1.25, true);
  dv.setInt32(9, -7, true);
  const bytes = handmade(
    {
      z: { dtype: 'I32', shape: [1], data_offsets: [9, 13] },
      a: { dtype: 'F64', shape: [], data_offsets: [1, 9] },
      m: { dtype: 'U8', shape: [1, 1], data_offsets: [0, 1] },
    },
    data,
  );
  const r = parseSafetensors(bytes);
  assert.equal(Array.from(r.tensors.get('a')!.data as Float64Array), [-1.25]);
  assert.equal(Array.from(r.tensors.get('z')!.data as Int32Array), [-7]);
  assert.equal(Array.from(r.tensors.get('m')!.data as Uint8Array), [9]);
  assert.equal(r.metadata, {});
});

test('header padded with trailing spaces is accepted', () => {
  const bytes = handmade('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}     ', Uint8Array.from([3]));
  assert.equal(Array.from(parseSafetensors(bytes).tensors.get('a')!.data as Uint8Array), [3]);
});

test('too short / truncated files', () => {
  throwsWith(
    () => parseSafetensors(new Uint8Array(5), 'short.st'),
    /short\.st/,
    /at least 8 bytes/,
    /found a file of 5 bytes/,
  );
  const good = serializeSafetensors(
    new Map([['x', { dtype: 'F64', shape: [4], data: new Float64Array(4) } as Tensor]]),
  );
  // Cut inside the data area: the tensor's offsets run past the end.
  throwsWith(
    () => parseSafetensors(good.subarray(0, good.length - 3), 'cut.st'),
    /cut\.st: tensor 'x'/,
    /run past the data area/,
    /truncated/,
  );
  // Cut inside the header: the header length exceeds the file.
  throwsWith(() => parseSafetensors(good.subarray(0, 20), 'cut2.st'), /header length/, /at most 12 bytes/);
});

test('a lying header length is refused without allocating', () => {
  throwsWith(
    () => parseSafetensors(handmade('{}', new Uint8Array(0), 2n ** 62n)),
    /header length .* says 4611686018427387904 bytes/,
    /at most 104857600/,
  );
  throwsWith(() => parseSafetensors(handmade('{}', new Uint8Array(0), 1000n)), /at most 2 bytes/);
});

test('malformed headers: not JSON, not an object, bad metadata, bad fields', () => {
  throwsWith(() => parseSafetensors(handmade('{"a": [1,')), /not valid JSON/);
  throwsWith(() => parseSafetensors(handmade('[1, 2]')), /must be a JSON object starting with '\{'/);
  throwsWith(
    () => parseSafetensors(handmade({ __metadata__: { k: 3 } })),
    /__metadata__\.k must be a string, found number 3/,
  );
  throwsWith(() => parseSafetensors(handmade({ __metadata__: ['x'] })), /__metadata__ must be an object/);
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2))),
    /tensor 't'/,
    /BF16 is valid safetensors but not supported/,
    /F64, F32, I32, I64, U8/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'F99', shape: [1], data_offsets: [0, 2] } }, new Uint8Array(2))),
    /unknown dtype "F99"/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'U8', shape: [-1], data_offsets: [0, 1] } }, new Uint8Array(1))),
    /shape must be an array of non-negative integers/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'U8', shape: [1.5], data_offsets: [0, 1] } }, new Uint8Array(1))),
    /shape must be/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'U8', shape: [1], data_offsets: [0] } }, new Uint8Array(1))),
    /data_offsets must be \[begin, end\]/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'U8', shape: [1], data_offsets: [1, 0] } }, new Uint8Array(1))),
    /begin is after end/,
  );
  throwsWith(
    () =>
      parseSafetensors(handmade({ t: { dtype: 'U8', shape: [1], data_offsets: [0, 1], extra: 1 } }, new Uint8Array(1))),
    /unexpected field 'extra'/,
  );
  throwsWith(() => parseSafetensors(handmade({ t: 5 })), /expected \{dtype, shape, data_offsets\}/);
  const bad = handmade('{"a":1}');
  bad[9] = 0xff; // invalid UTF-8 inside the header
  throwsWith(() => parseSafetensors(bad), /not valid UTF-8/);
});

test('a hostile header nesting arrays deeply gives a SafetensorsError, not a stack overflow', () => {
  const deep = '['.repeat(100000) + ']'.repeat(100000);
  throwsWith(
    () => parseSafetensors(handmade(`{"t": {"dtype": "U8", "shape": ${deep}, "data_offsets": [0, 0]}}`)),
    /shape must be an array of non-negative integers, found an array of 1 element \[\[…\]\]/,
  );
});

test('lying lengths: shape vs offsets, huge shapes', () => {
  throwsWith(
    () => parseSafetensors(handmade({ t: { dtype: 'F64', shape: [3], data_offsets: [0, 16] } }, new Uint8Array(16))),
    /shape \[3\] of F64 needs 24 bytes, but data_offsets \[0, 16\] span 16 bytes/,
  );
  // A shape whose product is astronomically large is compared with the bytes present, never allocated.
  throwsWith(
    () =>
      parseSafetensors(
        handmade({ t: { dtype: 'F64', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, new Uint8Array(8)),
      ),
    /needs .* bytes, but data_offsets \[0, 8\] span 8 bytes/,
  );
});

test('overlapping offsets, gaps and uncovered bytes are refused', () => {
  const d = new Uint8Array(8);
  throwsWith(
    () =>
      parseSafetensors(
        handmade(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] },
          },
          d,
        ),
      ),
    /tensor 'b'/,
    /overlap those of tensor 'a'/,
  );
  throwsWith(
    () =>
      parseSafetensors(
        handmade(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          },
          d,
        ),
      ),
    /overlap/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d)),
    /bytes 0\.\.4 of the data area belong to no tensor/,
  );
  throwsWith(
    () => parseSafetensors(handmade({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d)),
    /cover 4 bytes of the data area but it has 8 bytes/,
  );
});

test('writer refuses inconsistent tensors', () => {
  assert.throws(
    () => serializeSafetensors(new Map([['a', { dtype: 'F64', shape: [3], data: new Float64Array(2) } as Tensor]])),
    /shape \[3\] \(3 values\) but 2 values/,
  );
  assert.throws(
    () => serializeSafetensors(new Map([['a', { dtype: 'F64', shape: [2], data: new Float32Array(2) } as Tensor]])),
    /is F64 but its data is a Float32Array/,
  );
});

test.run();
