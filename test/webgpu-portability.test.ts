// What makes the WebGPU backend run on any conforming WebGPU implementation, not only on the one the other tests use
// (Dawn on Mesa): (1) no entry point of any kernel uses more than the 8 storage buffers per shader stage that
// WebGPU guarantees by default, and the device asks for no more, so a kernel that breaks the rule fails here too;
// (2) RoPE's angles come from a float64 host table, because WGSL's sin/cos are only accurate on [−π, π].
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gpuTest, requireGpu } from './webgpu-setup.ts';
import { computeEntryPoints, MAX_STORAGE_BUFFERS, storageBindingsUsed } from '../src/backend/webgpu/bindings.ts';
import { WebGpuDevice } from '../src/backend/webgpu/device.ts';
import { createJsDevice } from '../src/backend/js/device.ts';

const WGSL = join(import.meta.dirname, '..', 'wgsl');
const common = readFileSync(join(WGSL, 'common.wgsl'), 'utf8');
/** The GEMM files are compiled on their own (src/backend/webgpu/matmul.ts); every other kernel file with
 *  common.wgsl prepended (src/backend/webgpu/device.ts). */
const STANDALONE = new Set(['matmul.wgsl', 'matmul_rows.wgsl', 'matmul_128.wgsl']);
const kernels = readdirSync(WGSL)
  .filter((f) => f.endsWith('.wgsl') && f !== 'common.wgsl')
  .sort()
  .map((f) => ({ file: f, src: (STANDALONE.has(f) ? '' : `${common}\n`) + readFileSync(join(WGSL, f), 'utf8') }));

test(
  'the binding reader counts static use: through called functions, not member names, not shadowing ' + 'parameters',
  () => {
    const src = `
    @group(0) @binding(0) var<uniform> dims: D;
    @group(0) @binding(1) var<storage, read_write> y: array<f32>;
    @group(0) @binding(2) var<storage, read> x: array<f32>;
    @group(0) @binding(3) var<storage, read> w: array<f32>;
    @group(0) @binding(4) var<storage, read> unused: array<f32>;
    fn helper(x: f32) -> f32 { return x * w[0]; }   // parameter x, storage w
    fn twice(i: u32) -> f32 { let y = 2.0; return y * helper(f32(i)); } // local y
    // a comment naming unused[0] is not a use
    @compute @workgroup_size(64)
    fn main(@builtin(global_invocation_id) gid: vec3<u32>) { y[gid.x] = twice(gid.y); }
    @compute @workgroup_size(64) fn other() { y[0] = x[0]; }`;
    assert.equal(computeEntryPoints(src), ['main', 'other']);
    assert.equal(storageBindingsUsed(src, 'main'), [
      { name: 'y', binding: 1 },
      { name: 'w', binding: 3 },
    ]);
    assert.equal(
      storageBindingsUsed(src, 'other').map((u) => u.name),
      ['y', 'x'],
    );
    assert.throws(() => storageBindingsUsed(src, 'missing'), /no function 'missing'/);
  },
);

test(`every entry point of every WGSL kernel uses at most ${MAX_STORAGE_BUFFERS} storage buffers`, () => {
  assert.ok(kernels.length >= 50, `expected the kernel files under wgsl/, found ${kernels.length}`);
  const over: string[] = [];
  let entries = 0;
  for (const { file, src } of kernels) {
    const eps = computeEntryPoints(src);
    assert.ok(eps.length > 0, `${file}: no @compute entry point found`);
    for (const ep of eps) {
      entries++;
      const used = storageBindingsUsed(src, ep);
      if (used.length > MAX_STORAGE_BUFFERS)
        over.push(`${file} ${ep}: ${used.length} (${used.map((u) => u.name).join(', ')})`);
    }
  }
  assert.equal(over, [], 'entry points over the limit');
  assert.ok(entries > kernels.length, 'multi-pass kernels contribute several entry points');
});

gpuTest(
  `the device asks for ${MAX_STORAGE_BUFFERS} storage buffers per stage; every entry point compiles`,
  async () => {
    const gpu = await requireGpu();
    assert.is(gpu.limits.maxStorageBuffersPerShaderStage, MAX_STORAGE_BUFFERS);
    assert.is(Number(gpu.device.limits.maxStorageBuffersPerShaderStage), MAX_STORAGE_BUFFERS);
    for (const { file, src } of kernels) {
      for (const ep of computeEntryPoints(src)) gpu.kernel(`portability:${file}`, src, {}, ep);
    }
    await gpu.sync(); // any invalid pipeline (too many buffers, or anything else) throws here with its kernel's name
  },
);

gpuTest(
  'a kernel over the storage-buffer limit is refused at compile time, with its name, entry point and ' + 'buffers',
  async () => {
    const gpu = await requireGpu();
    const n = MAX_STORAGE_BUFFERS + 1;
    const decl = Array.from(
      { length: n },
      (_, i) => `@group(0) @binding(${i}) var<storage, read_write> b${i}: array<f32>;`,
    ).join('\n');
    const body = Array.from({ length: n }, (_, i) => `b${i}[0] = 1.0;`).join(' ');
    assert.throws(
      () => gpu.kernel('too_many_buffers', `${decl}\n@compute @workgroup_size(1) fn wide() { ${body} }`, {}, 'wide'),
      (e: Error) =>
        /'too_many_buffers' entry point 'wide' uses 9 storage buffers \(b0, b1, .*b8\); this device allows 8/.test(
          e.message,
        ),
    );
  },
);

gpuTest(
  'rope and ropeBackward stay accurate at long positions (host float64 angle table), and tables are ' + 'reused',
  async () => {
    const gpu = await requireGpu();
    const gdev = new WebGpuDevice(gpu);
    const jdev = createJsDevice();
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed / 2 ** 32) * 2 - 1;
    };
    const rand = (n: number) => Float32Array.from({ length: n }, next);
    // Angles up to 2047 rad: float32 alone cannot even represent s·inv_freq there to better than 1.2e-4 rad, so an
    // on-GPU angle would miss this bound on every implementation. S = 9 after S = 2048 reuses the long table's rows;
    // a different theta gets its own.
    for (const s of [
      { B: 1, S: 2048, heads: 2, hd: 8, theta: 10000 },
      { B: 2, S: 9, heads: 3, hd: 8, theta: 10000 },
      { B: 1, S: 300, heads: 1, hd: 6, theta: 500000 },
    ]) {
      const n = s.B * s.S * s.heads * s.hd;
      for (const kernel of ['rope', 'ropeBackward'] as const) {
        const x = rand(n),
          y0 = rand(n);
        const [gy, gx, jy, jx] = [gdev.upload(y0), gdev.upload(x), jdev.upload(y0), jdev.upload(x)];
        gdev.kernels[kernel](gy, gx, s);
        jdev.kernels[kernel](jy, jx, s);
        const [got, want] = [await gdev.read(gy), await jdev.read(jy)];
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        assert.ok(
          worst <= 2e-6,
          `${kernel} S=${s.S} hd=${s.hd} theta=${s.theta}: worst |webgpu − js| = ${worst.toExponential(2)} > 2e-6`,
        );
        for (const t of [gy, gx]) gdev.free(t);
        for (const t of [jy, jx]) jdev.free(t);
      }
    }
  },
);

test.run();
