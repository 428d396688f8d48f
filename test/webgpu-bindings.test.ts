// WGSL entry points are called by name: the kernel table (src/backend/webgpu/kernels.generated.ts) is what the
// generator reads from the WGSL declarations now, a named call resolves every field and buffer to where the WGSL
// declared it, and the compiler refuses a call that misses or adds a binding or a uniform field.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { bindCall } from '../src/backend/webgpu/call.ts';
import { GENERATED, generate } from '../src/backend/webgpu/gen-bindings.ts';
import type { GpuBuffer } from '../src/backend/webgpu/gpu.ts';

const buf = (label: string): GpuBuffer => ({ label, length: 1 }) as GpuBuffer;

test('kernels.generated.ts is what `npm run gen:wgsl` writes from wgsl/ now', () => {
  assert.fixture(readFileSync(GENERATED, 'utf8'), generate(), 'run `npm run gen:wgsl` after changing a WGSL file');
});

test('a named call puts each uniform field and buffer where the WGSL declares it', () => {
  const [c1, c2, a1, a2, g1, g2] = ['c1', 'c2', 'a1', 'a2', 'g1', 'g2'].map(buf);
  const c = bindCall('monetVdMix', 'main', { T: 2, H: 3, E: 4, m: 5 }, { c1, c2, a1, a2, g1, g2 });
  assert.equal(c.uniform, [2, 3, 4, 5]);
  // wgsl/monetVdMix.wgsl: c1 @binding(5), c2 (6), a1 (7), a2 (8), g1 (9), g2 (10); the h* bindings are not used by main
  assert.equal(
    c.bindings.map((b) => [b.binding, b.buffer.label]),
    [
      [5, 'c1'],
      [6, 'c2'],
      [7, 'a1'],
      [8, 'a2'],
      [9, 'g1'],
      [10, 'g2'],
    ],
  );
  assert.match(c.src, /fn flat_id/, 'common.wgsl is prepended');
  const m = bindCall('axpby', 'main', { n: 7, alpha: 0.5, beta: 2 }, { y: buf('y'), x: buf('x') });
  assert.equal(m.uniform, [7, { f32: 0.5 }, { f32: 2 }], 'f32 fields by their declared type, in struct order');
  const g = bindCall(
    'matmul',
    'main',
    { M: 1, N: 2, K: 3, batch: 1, offA: 0, offB: 0, offC: 0, strideA: 3, strideB: 6, strideC: 2, alpha: 1, beta: 0 },
    { A: buf('A'), B: buf('B'), C: buf('C') },
  );
  assert.not.match(g.src, /fn flat_id/, 'the GEMM files are compiled on their own');
});

test('the compiler refuses a wrong call; at run time a missing field or buffer is named', () => {
  const y = buf('y');
  const x = buf('x');
  const one = { n: 1, alpha: 1, beta: 1 };
  // @ts-expect-error a buffer the entry point uses is missing
  const noX = () => bindCall('axpby', 'main', one, { y });
  assert.throws(noX, /axpby\.main: storage buffer 'x' not given/);
  // @ts-expect-error a uniform field is missing
  const noBeta = () => bindCall('axpby', 'main', { n: 1, alpha: 1 }, { y, x });
  assert.throws(noBeta, /axpby\.main: uniform field 'beta' not given/);
  // @ts-expect-error the inplace entry point does not use x
  bindCall('maskScale', 'inplace', { n: 1, alpha: 1 }, { y, x, mask: buf('mask') });
  // @ts-expect-error no such kernel file
  assert.throws(() => bindCall('axbpy', 'main', {}, {}));
});

test.run();
