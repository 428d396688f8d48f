// The WASM backend on several threads gives exactly what it gives on one: every kernel splits its outputs, never a
// sum, so each number is computed by the same operations in the same order whatever the thread count (the kernel
// by kernel check, bit for bit, is in test/wasm-kernels.test.ts). Here: whole training steps of every feed-forward
// kind — losses, gradient norms and the parameters after AdamW identical bit for bit between 1 and 2 threads (and
// 3: uneven parts) — and how the thread pool reports a failing kernel and a missing shared-memory build.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWasmDeviceFromBytes, type WasmDevice, type WasmTensor } from '../src/backend/wasm/device.ts';
import { createWasmDevice, readWasmBytes, spawnNodeWorker } from '../src/backend/wasm/node.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset, type ModelConfig } from '../src/train/presets.ts';
import { Rng } from '../src/train/rng.ts';

const bytes = readWasmBytes();

/** A small model of each kind (4 layers of width 32 over bytes). */
function small(name: string, over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    ...getPreset(name).config,
    hidden_size: 32,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 16,
    ...over,
  };
}
const MODELS: [string, ModelConfig][] = [
  ['monet-vd', small('monet-vd-small', { moe_experts: 8, moe_dim: 8, moe_heads: 2, moe_topk: 2 })],
  ['monet-hd', small('monet-hd-small', { moe_experts: 8, moe_dim: 8, moe_heads: 2, moe_topk: 2 })],
  ['dense', small('dense-small', { intermediate_size: 40 })],
  ['smoe', small('smoe-small', { intermediate_size: 24, num_experts: 4 })],
  ['peer', small('peer-small', { intermediate_size: 40, num_experts: 64, heads: 2, top_k: 4, key_dim: 8 })],
  ['topk', small('topk-small', { intermediate_size: 40, k: 8 })],
];

const hp = (step: number) => ({
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1,
  step,
  alpha: 0.5,
});

/** Losses, gradient norms and final parameters of `steps` training steps on `dev`. */
async function train(dev: WasmDevice, config: ModelConfig, B: number, S: number, steps: number) {
  const init = initParams(config, 7);
  const engine = new DeviceEngine(dev, config, { config, ...init });
  const rng = new Rng(11);
  const results: number[] = [];
  for (let i = 1; i <= steps; i++) {
    const batch = Int32Array.from({ length: B * S }, () => rng.int(config.vocab_size));
    const r = (await engine.trainStep([batch], B, S, hp(i), true))!;
    results.push(r.loss, r.ce, r.gradNorm);
  }
  const params = (await engine.exportModel()).params;
  await engine.dispose();
  return { results, params };
}

/** Fails unless both runs gave the same bits: every loss, norm and parameter. */
function assertSameRuns(a: Awaited<ReturnType<typeof train>>, b: Awaited<ReturnType<typeof train>>, what: string) {
  assert.equal(b.results, a.results, `${what}: losses / gradient norms`);
  for (const [name, p] of a.params) {
    const q = b.params.get(name)!;
    const i = p.findIndex((v, j) => !Object.is(v, q[j]));
    if (i >= 0) assert.unreachable(`${what}: ${name}[${i}] = ${q[i]}, one thread ${p[i]} (must be identical)`);
  }
}

for (const [kind, config] of MODELS) {
  test(`${kind}: 3 training steps on 2 and 3 threads (every kernel split) = 1 thread, bit for bit`, async () => {
    const one = await train(await createWasmDeviceFromBytes(bytes, {}), config, 2, 16, 3);
    for (const threads of [2, 3]) {
      const dev = await createWasmDeviceFromBytes(bytes, {
        threads,
        splitEverything: true,
        spawnWorker: spawnNodeWorker,
      });
      assert.is(dev.threads, threads);
      assertSameRuns(one, await train(dev, config, 2, 16, 3), `${kind}, ${threads} threads`);
    }
  });
}

test('the default model at a real size (the splits a run uses): 2 threads = 1 thread, bit for bit', async () => {
  const config = { ...getPreset('monet-vd-small').config };
  const one = await train(await createWasmDevice({ threads: 1 }), config, 4, 128, 2);
  const two = await train(await createWasmDevice({ threads: 2 }), config, 4, 128, 2);
  assertSameRuns(one, two, 'monet-vd-small, 2 threads');
});

test('a job has up to 4 parts per thread, each run once, scratch is per thread; the counters add up', async () => {
  const dev = await createWasmDeviceFromBytes(bytes, {
    threads: 2,
    splitEverything: true,
    spawnWorker: spawnNodeWorker,
  });
  const n = 4096;
  const x = dev.upload(Float32Array.from({ length: n }, (_, i) => i % 7));
  const y = dev.alloc('f32', n);
  const s0 = dev.threadStats();
  for (let r = 0; r < 50; r++) dev.kernels.axpby(y, x, { n, alpha: r, beta: 0 });
  const s1 = dev.threadStats();
  assert.is(s1.jobs - s0.jobs, 50);
  assert.is(s1.parts - s0.parts, 50 * 8, '8 parts per job: 4 per thread');
  const ran = s1.partsBy.reduce((a, p, t) => a + p - s0.partsBy[t], 0);
  assert.is(ran, 50 * 8, 'each part run by exactly one thread');
  assert.ok(s1.waitMs >= s0.waitMs && s1.runMs > s0.runMs);
  assert.equal(
    await dev.read(y),
    Float32Array.from({ length: n }, (_, i) => 49 * (i % 7)),
  );
  // a product with per-thread scratch (gemm packs into it), cut into 8 parts: the same bits as one thread
  const M = 64;
  const K = 24;
  const N = 40;
  const rng = new Rng(5);
  const a = Float32Array.from({ length: M * K }, () => rng.normal());
  const b = Float32Array.from({ length: K * N }, () => rng.normal());
  const one = await createWasmDeviceFromBytes(bytes, {});
  const product = async (d: WasmDevice) => {
    const c = d.alloc('f32', M * N);
    d.kernels.matmul(c, d.upload(a), d.upload(b), { M, N, K, transA: false, transB: false, accumulate: false });
    return d.read(c);
  };
  const p0 = dev.threadStats().parts;
  assert.equal(await product(dev), await product(one));
  assert.is(dev.threadStats().parts - p0, 8);
  await one.dispose();
  await dev.dispose();
});

test('a kernel that fails on a worker is reported with the thread and the export', async () => {
  const dev = await createWasmDeviceFromBytes(bytes, {
    threads: 2,
    splitEverything: true,
    spawnWorker: spawnNodeWorker,
  });
  const y = dev.alloc('f32', 64);
  // a tensor whose address lies beyond the 4 GiB a wasm32 memory can hold: the worker's part traps
  const bad: WasmTensor<'f32'> = {
    dtype: 'f32',
    length: 64,
    ptr: 2 ** 32 - 128,
    bytes: 256,
    freed: false,
    unzeroed: false,
  };
  try {
    dev.kernels.axpby(y, bad, { n: 64, alpha: 1, beta: 0 });
    assert.unreachable('an out-of-bounds kernel must throw');
  } catch (e) {
    assert.match((e as Error).message, /out of bounds|wasm thread \d: kernel export 'axpby' failed/);
  }
  // the pool still works afterwards
  const x = dev.upload(Float32Array.from({ length: 64 }, (_, i) => i));
  dev.kernels.axpby(y, x, { n: 64, alpha: 2, beta: 0 });
  assert.is((await dev.read(y))[63], 126);
  await dev.dispose();
});

test('without the shared-memory build the device runs on one thread and says why', async () => {
  const dev = await createWasmDeviceFromBytes({ plain: bytes.plain }, { threads: 4, spawnWorker: spawnNodeWorker });
  assert.is(dev.threads, 1);
  assert.match(dev.threadsNote ?? '', /1 thread instead of 4: the shared-memory kernels build was not given/);
  await dev.dispose();
});

test.run();
