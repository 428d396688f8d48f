// The step decision on the device (stepGuard, copyIf, adamw's skip flag) against closed forms written here, on the
// JS device (the oracle the kernel tests compare wasm and webgpu with) and on wasm and webgpu directly — including
// ±Inf, which the JS comparison of the kernel tests cannot tell apart from a wrong value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Device } from '../src/backend/device.ts';
import { STEP } from '../src/backend/kernels.ts';
import { createJsDevice } from '../src/backend/js/device.ts';
import { createWasmDevice } from '../src/backend/wasm/node.ts';
import { WebGpuDevice } from '../src/backend/webgpu/device.ts';
import { backendTest, requireGpu } from './webgpu-setup.ts';
import { ctlWith } from './step-cases.ts';

const DEVICES: Array<[string, () => Promise<Device>]> = [
  ['js', async () => createJsDevice()],
  ['wasm', () => createWasmDevice()],
  ['webgpu', async () => new WebGpuDevice(await requireGpu())],
];

/** One test per device; the webgpu one is skipped, with the reason, where there is no adapter (test/skip.ts). */
function onEveryDevice(title: string, body: (dev: Device) => Promise<void>): void {
  for (const [name, open] of DEVICES) backendTest(name)(`${title} (${name})`, async () => body(await open()));
}
const f32 = (x: number) => Math.fround(x);

onEveryDevice(
  'stepGuard: clip factor min(1, clip/(‖g‖ + 1e-6)) with ‖g‖ = sqrt(normSq)/accum; counters untouched by a good ' +
    'step',
  async (dev) => {
    for (const [loss, normSq, accum, clip] of [
      [3, 36, 2, 1],
      [3, 0.25, 1, 1],
      [3, 400, 1, 0],
      [1e30, 1e30, 4, 0.5],
    ]) {
      const t = dev.upload(ctlWith({ loss, normSq, faults: 3, streak: 2, streakFrom: 7, lastStep: 8 }));
      dev.kernels.stepGuard(t, { accum, clip, step: 9 });
      const c = await dev.read(t);
      const norm = Math.sqrt(f32(normSq)) / accum;
      const want = clip > 0 ? Math.min(1, clip / (norm + 1e-6)) : 1;
      assert.ok(
        Math.abs(c[STEP.scale] - want) <= 1e-6 * want,
        `${dev.name} loss ${loss} normSq ${normSq}: scale ${c[STEP.scale]}, want ${want}`,
      );
      assert.equal(
        [c[STEP.skip], c[STEP.faults], c[STEP.streak], c[STEP.streakFrom], c[STEP.lastStep]],
        [0, 3, 0, 7, 8],
        `${dev.name}: flags`,
      );
      dev.free(t);
    }
  },
);

onEveryDevice(
  'stepGuard: NaN or ±Inf loss or squared norm ⇒ scale 0, skip 1, one more fault, the streak grows, the step is ' +
    'recorded',
  async (dev) => {
    for (const [loss, normSq] of [
      [NaN, 1],
      [Infinity, 1],
      [-Infinity, 1],
      [2, NaN],
      [2, Infinity],
    ]) {
      const t = dev.upload(ctlWith({ loss, normSq, scale: 0.5, faults: 4, streak: 0, streakFrom: 2, lastStep: 3 }));
      dev.kernels.stepGuard(t, { accum: 2, clip: 1, step: 10 });
      dev.kernels.stepGuard(t, { accum: 2, clip: 1, step: 11 }); // the same report again: the streak goes on
      const c = await dev.read(t);
      const what = `${dev.name} loss ${loss} normSq ${normSq}`;
      assert.equal(
        [c[STEP.scale], c[STEP.skip], c[STEP.faults], c[STEP.streak], c[STEP.streakFrom], c[STEP.lastStep]],
        [0, 1, 6, 2, 10, 11],
        what,
      );
      assert.ok(
        Object.is(c[STEP.lastLoss], loss / 2) || (Number.isNaN(loss) && Number.isNaN(c[STEP.lastLoss])),
        `${what}: lastLoss ${c[STEP.lastLoss]}`,
      );
      const norm = Math.sqrt(normSq) / 2;
      assert.ok(
        Object.is(c[STEP.lastNorm], f32(norm)) || (Number.isNaN(norm) && Number.isNaN(c[STEP.lastNorm])),
        `${what}: lastNorm ${c[STEP.lastNorm]}`,
      );
      dev.free(t);
    }
  },
);

onEveryDevice(
  'adamw skips when ctl[skip] ≠ 0 and scales g by gradScale·ctl[scale]; copyIf copies only when the flag is ' + 'set',
  async (dev) => {
    const p0 = Float32Array.of(1, -2, 0.5),
      g0 = Float32Array.of(0.3, -0.01, NaN);
    const hp = { n: 3, lr: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1, gradScale: 0.5 };
    const [p, g, m, v] = [dev.upload(p0), dev.upload(g0), dev.alloc('f32', 3), dev.alloc('f32', 3)];
    dev.kernels.adamw(p, g, m, v, dev.upload(ctlWith({ skip: 1 })), hp);
    assert.equal([...(await dev.read(p))], [...p0], `${dev.name}: skipped adamw wrote p`);
    assert.equal(
      [...(await dev.read(m)), ...(await dev.read(v))],
      [0, 0, 0, 0, 0, 0],
      `${dev.name}: skipped adamw wrote m or v`,
    );
    const g1 = dev.upload(Float32Array.of(0.3, -0.01, 0));
    dev.kernels.adamw(p, g1, m, v, dev.upload(ctlWith({ scale: 0.4 })), hp);
    // step 1: m̂ = ĝ, v̂ = ĝ², so p ← p·(1 − lr·wd) − lr·ĝ/(|ĝ| + eps) with ĝ = g·0.5·0.4
    const got = await dev.read(p);
    [0.3, -0.01, 0].forEach((gi, i) => {
      const gh = gi * 0.2;
      const want = p0[i] * (1 - 0.1 * 0.1) - (gh === 0 ? 0 : (0.1 * gh) / (Math.abs(gh) + 1e-8));
      assert.ok(Math.abs(got[i] - want) <= 1e-6, `${dev.name} p[${i}] ${got[i]}, want ${want}`);
    });
    const dst = dev.upload(Float32Array.of(1, 2, 3)),
      src = dev.upload(Float32Array.of(7, 8, 9));
    dev.kernels.copyIf(dst, src, dev.upload(ctlWith({ skip: 0 })), { n: 3, at: STEP.skip });
    assert.equal([...(await dev.read(dst))], [1, 2, 3], `${dev.name}: copyIf with flag 0`);
    dev.kernels.copyIf(dst, src, dev.upload(ctlWith({ skip: 1 })), { n: 3, at: STEP.skip });
    assert.equal([...(await dev.read(dst))], [7, 8, 9], `${dev.name}: copyIf with flag 1`);
  },
);

test.run();
