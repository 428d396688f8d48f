// The WebGPU device wrapper: invalid WGSL must surface as an error (never as garbage numbers), buffers round-trip,
// and reads return only the range asked for.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest, requireGpu } from './webgpu-setup.ts';
import type { GTensor } from '../src/backend/webgpu/device.ts';
import { openGpu } from '../src/backend/webgpu/gpu.ts';
import { matmul } from '../src/backend/webgpu/matmul.ts';

gpuTest('an adapter is found (CI=true makes a missing adapter a failure)', async () => {
  const gpu = await requireGpu();
  assert.ok(gpu.description.length > 0);
});

gpuTest('invalid WGSL is reported by the next read, with the kernel name', async () => {
  const gpu = await requireGpu();
  const buf = gpu.upload([1, 2, 3], 'x');
  const k = gpu.kernel(
    'broken_kernel',
    '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n' +
      '@compute @workgroup_size(1) fn main() { x[0] = undefined_name; }',
  );
  gpu.dispatch(k, null, [{ binding: 0, buffer: buf }], [1]);
  let msg = '';
  try {
    await gpu.read(buf);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.match(msg, /broken_kernel/);
  // The device is still usable afterwards.
  const ok = gpu.upload([4, 5, 6, 7], 'y');
  assert.equal(Array.from(await gpu.read(ok, 1, 2)), [5, 6]);
});

gpuTest('write, copy and clear keep program order with queued dispatches', async () => {
  const gpu = await requireGpu();
  const a = gpu.upload([1, 2, 3, 4], 'a');
  const b = gpu.alloc(4, 'b');
  gpu.copy(a, 1, b, 0, 3);
  gpu.write(a, [9, 9, 9, 9]);
  assert.equal(Array.from(await gpu.read(b)), [2, 3, 4, 0]);
  gpu.clear(a);
  assert.equal(Array.from(await gpu.read(a)), [0, 0, 0, 0]);
});

gpuTest('launches past 65535 workgroups fold into the y dimension and cover every element', async () => {
  const gpu = await requireGpu();
  const { WebGpuDevice } = await import('../src/backend/webgpu/device.ts');
  const dev = new WebGpuDevice(gpu);
  const n = 65535 * 256 + 1000; // one more than a single dimension of 256-wide workgroups can hold
  const x = dev.alloc('f32', n);
  dev.kernels.fill(x, { n, value: 3 });
  const got = await gpu.read((x as GTensor).buf, n - 2000, 2000);
  assert.ok(
    got.every((v) => v === 3),
    'the last elements were not filled',
  );
  dev.free(x);
});

gpuTest('the debug switch prints the WGSL, the variant chosen and the dispatch sizes', async () => {
  const gpu = await openGpu({ debug: true });
  const lines: string[] = [];
  const err = console.error;
  console.error = (s: unknown) => void lines.push(String(s));
  try {
    const a = gpu.upload(new Float32Array(3 * 5), 'A'),
      b = gpu.upload(new Float32Array(5 * 70), 'B'),
      c = gpu.alloc(3 * 70, 'C');
    matmul(gpu, c, a, b, { M: 3, N: 70, K: 5, transB: false });
    await gpu.sync();
  } finally {
    console.error = err;
    gpu.destroy();
  }
  const text = lines.join('\n');
  assert.match(text, /compile matmul_rows \(TRANS_A=0,TRANS_B=0\)/);
  assert.match(text, /fn main/);
  assert.match(text, /dispatch matmul_rows\[TRANS_A=0,TRANS_B=0\] groups=\(70,1,1\)/);
});

gpuTest('a destroyed device gives a clear error instead of results', async () => {
  const gpu = await openGpu();
  const buf = gpu.upload([1, 2], 'x');
  gpu.destroy();
  let msg = '';
  try {
    await gpu.read(buf);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.match(msg, /destroyed|lost/);
});

test.run();
