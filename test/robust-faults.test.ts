// Numerical faults and device loss during training.
//   - a step whose loss or gradient is not finite is skipped by the engine: parameters, AdamW moments and BatchNorm
//     statistics stay exactly as before (reference, wasm, webgpu engines);
//   - the loop logs each skip, goes on after a transient fault, and stops after 5 in a row with a message that names
//     the last good checkpoint; the checkpoint on disk is never replaced by a diverged model;
//   - a WebGPU device lost mid-run (simulated with GPUDevice.destroy()) is reported with the checkpoint to resume
//     from, and --resume continues the run to the end with the losses of an uninterrupted run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../src/train/flags.ts';
import { resolveModel, resolveTrainOptions, TRAIN_FLAGS } from '../src/train/options.ts';
import { train } from '../src/train/trainer.ts';
import { loadModel, loadTrainerState, type HostParams } from '../src/train/checkpoint.ts';
import type { Engine } from '../src/train/engine.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import type { ReferenceEngine } from '../src/train/engine-reference.ts';
import { WebGpuDevice } from '../src/backend/webgpu/device.ts';
import type { Device } from '../src/backend/device.ts';
import { backendTest, gpuTest } from './webgpu-setup.ts';

// The engines' private state, reached by name: these tests inject faults into it. TypeScript allows a private member
// by element access only, which keeps it typed (a renamed field fails to compile).
// biome-ignore lint/complexity/useLiteralKeys: a private member, see above
const referenceParams = (e: Engine) => (e as ReferenceEngine)['params'];
const deviceInternals = (e: Engine) => {
  const d = e as DeviceEngine;
  // biome-ignore lint/complexity/useLiteralKeys: private members, see above
  return { dev: d['dev'], params: d['params'] };
};

const dir = mkdtempSync(join(tmpdir(), 'monet-faults-'));
const textFile = join(dir, 'text.txt');
writeFileSync(textFile, Array.from({ length: 300 }, (_, i) => `a quick brown fox ${i % 5} jumps.`).join('\n'));
const quiet = { write: () => true, isTTY: false };

function setup(extra: string[]) {
  const argv = [
    '--preset',
    'tiny',
    '--data',
    textFile,
    '--runs-dir',
    dir,
    '--batch-size',
    '2',
    '--seq-len',
    '16',
    '--eval-every',
    '100',
    '--eval-batches',
    '1',
    '--log-every',
    '1',
    '--sample-tokens',
    '0',
    ...extra,
  ];
  const f = parseFlags('train', TRAIN_FLAGS, argv);
  const { preset, config } = resolveModel(f);
  return { o: resolveTrainOptions(f, preset, 'x'), config };
}

interface Rec {
  step: number;
  loss?: number;
  event?: string;
  reason?: string;
}
const readLog = (name: string): Rec[] =>
  readFileSync(join(dir, name, 'log.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec);

/** Same values, NaN equal to NaN (Object.is per element). */
function sameMaps(a: HostParams, b: HostParams, what: string): void {
  assert.equal([...a.keys()], [...b.keys()], what);
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++)
      if (!Object.is(x[i], y[i])) assert.unreachable(`${what} '${k}'[${i}] changed: ${x[i]} → ${y[i]}`);
  }
}

/** A delegating engine whose trainStep can be intercepted. */
function wrap(
  inner: Engine,
  onStep: (call: number, run: () => ReturnType<Engine['trainStep']>) => ReturnType<Engine['trainStep']>,
): Engine {
  let call = 0;
  return {
    get name() {
      return inner.name;
    },
    get dtype() {
      return inner.dtype;
    },
    get config() {
      return inner.config;
    },
    trainStep: (b, B, S, hp, want) => onStep(++call, () => inner.trainStep(b, B, S, hp, want)),
    evalLoss: (t, B, S, a) => inner.evalLoss(t, B, S, a),
    nextLogits: (t, a) => inner.nextLogits(t, a),
    exportModel: () => inner.exportModel(),
    exportMoments: () => inner.exportMoments(),
    gradients: () => inner.gradients(),
    dispose: () => inner.dispose(),
  };
}

/** The engine with the learning rate replaced by `lr` from the `from`-th step on (1-based). */
function absurdLrFrom(inner: Engine, from: number, lr: number): Engine {
  let call = 0;
  const e = wrap(inner, (_call, run) => run());
  e.trainStep = (b, B, S, hp, want) => inner.trainStep(b, B, S, ++call >= from ? { ...hp, lr } : hp, want);
  return e;
}

test(
  'absurd learning rate: every non-finite step is skipped and logged, 5 in a row stop the run, the checkpoint ' +
    'stays good',
  async () => {
    for (const backend of ['reference', 'wasm']) {
      const name = `lr-${backend}`;
      // Two sane steps (a checkpoint at step 2), then an absurd learning rate: step 3 blows the weights up (its
      // own loss was finite), steps 4–8 are not finite and skipped.
      const { o, config } = setup(['--backend', backend, '--steps', '40', '--save-every', '2', '--name', name]);
      const absurd = backend === 'wasm' ? 1e30 : 1e200;
      let err: Error | null = null;
      try {
        await train(o, config, false, { out: quiet, wrapEngine: (e) => absurdLrFrom(e, 3, absurd) });
      } catch (e) {
        err = e as Error;
      }
      assert.ok(err, `${backend}: the run did not stop`);
      assert.match(
        err!.message,
        /training stopped at step (\d+): 5 consecutive steps( \(steps \d+–\d+\))? had a non-finite loss or gradient/,
      );
      assert.match(err!.message, /try a lower --lr/);
      const m = /the checkpoint of step (\d+) in (\S+) is intact; continue with: monet train --resume --name lr-/.exec(
        err!.message,
      );
      assert.ok(m, err!.message);
      assert.is(m![1], '2');
      const log = readLog(name);
      const skips = log.filter((r) => r.event === 'skip');
      assert.is(skips.length, 5, `${backend}: five skip records`);
      for (const s of skips) assert.match(s.reason!, /loss is (NaN|-?Infinity)|gradient norm is/);
      // The checkpoint on disk is the one the message names, and it holds finite numbers only.
      const ck = loadModel(join(dir, name));
      assert.is(loadTrainerState(join(dir, name), ck.config).step, Number(m![1]));
      for (const [k, a] of ck.params) assert.ok(a.every(Number.isFinite), `${backend}: checkpointed '${k}' is finite`);
    }
  },
);

test('absurd learning rate from step 1, a checkpoint every step: the blown-up model is never written', async () => {
  for (const backend of ['reference', 'wasm']) {
    const name = `lr1-${backend}`;
    const { o, config } = setup([
      ...['--backend', backend, '--steps', '40', '--save-every', '1', '--warmup', '0', '--min-lr', '0'],
      ...['--lr', backend === 'wasm' ? '1e30' : '1e200', '--name', name],
    ]);
    let msg = '';
    await train(o, config, false, { out: quiet }).catch((e: Error) => {
      msg = e.message;
    });
    assert.match(msg, /not writing the checkpoint of step 1: parameter '\S+' holds value \S+ at index \d+ is beyond/);
    assert.match(msg, /the model has diverged; no checkpoint had been written yet/);
    assert.throws(() => loadTrainerState(join(dir, name), config), /does not exist/);
  }
});

for (const backend of ['wasm', 'webgpu'] as const)
  backendTest(backend)(
    `device engine on ${backend}, --log-every 4: faults are counted on the device, reported at the next read, 5+ ` +
      'in a row stop the run',
    async () => {
      const name = `lr4-${backend}`;
      const { o, config } = setup([
        '--backend',
        backend,
        '--steps',
        '40',
        '--log-every',
        '4',
        '--save-every',
        '8',
        '--lr',
        '1e30',
        '--warmup',
        '0',
        '--min-lr',
        '0',
        '--name',
        name,
      ]);
      const asked: number[] = [];
      let msg = '';
      await train(o, config, false, {
        out: quiet,
        // notes the steps whose result the loop asks for (the only steps at which a device engine reads anything back)
        wrapEngine: (inner) => {
          const e = wrap(inner, (_call, run) => run());
          e.trainStep = (b, B, S, hp, want) => {
            if (want) asked.push(hp.step);
            return inner.trainStep(b, B, S, hp, want);
          };
          return e;
        },
      }).catch((e: Error) => (msg = e.message));
      const m = new RegExp(
        String.raw`training stopped at step (\d+): (\d+) consecutive steps \(steps (\d+)–(\d+)\) ` +
          'had a non-finite loss or gradient',
      ).exec(msg);
      assert.ok(m, `${backend}: ${msg}`);
      const [stop, streak, from, to] = [1, 2, 3, 4].map((i) => Number(m![i]));
      assert.is(
        stop % 4,
        0,
        `${backend}: the stop is noticed at a read (a multiple of --log-every), not at step ${stop}`,
      );
      assert.is(to, stop);
      assert.is(streak, stop - from + 1);
      assert.ok(streak >= 5 && streak < 5 + 4, `${backend}: ${streak} in a row when noticed`);
      assert.ok(
        asked.every((s) => s === 1 || s % 4 === 0),
        `${backend}: results asked only at step 1 and every 4 steps (and before checkpoints): ${asked}`,
      );
      // Skip records carry the count of skipped steps since the previous read; together they cover the streak.
      const skips = readLog(name).filter((r) => r.event === 'skip') as (Rec & {
        skipped: number;
        read_at: number;
        streak: number;
      })[];
      assert.ok(skips.length >= 1);
      for (const r of skips) {
        assert.ok(r.read_at % 4 === 0 && r.step <= r.read_at && r.skipped >= 1 && r.skipped <= 4, JSON.stringify(r));
        assert.match(r.reason!, /loss is (NaN|-?Infinity)|gradient norm is/);
      }
      assert.is(
        skips.reduce((a, r) => a + r.skipped, 0),
        streak,
        `${backend}: skipped steps in the log`,
      );
      // No checkpoint is written inside the streak: the message names the last one before it, or says there is none.
      const ckm = /the checkpoint of step (\d+) in \S+ is intact/.exec(msg);
      if (from <= 8) assert.match(msg, /no checkpoint had been written yet/);
      else {
        assert.ok(ckm, msg);
        const ck = loadModel(join(dir, name));
        assert.ok(loadTrainerState(join(dir, name), ck.config).step < from, 'the checkpoint predates the streak');
        for (const [k, a] of ck.params)
          assert.ok(a.every(Number.isFinite), `${backend}: checkpointed '${k}' is finite`);
      }
    },
  );

test(
  'a transient NaN (one poisoned forward) is skipped without touching parameters, moments or BN state; training ' +
    'goes on',
  async () => {
    const { o, config } = setup([
      '--backend',
      'reference',
      '--steps',
      '8',
      '--save-every',
      '100',
      '--name',
      'transient',
    ]);
    let checked = false;
    await train(o, config, false, {
      out: quiet,
      wrapEngine: (inner) =>
        wrap(inner, async (call, run) => {
          if (call !== 3) return run();
          // Poison one weight for this step only (a stand-in for a bad batch or a hardware glitch).
          const w = referenceParams(inner)['model.norm.weight'];
          const keep = w[0];
          w[0] = NaN;
          const before = { ...(await inner.exportModel()), ...(await inner.exportMoments()) };
          const r = await run();
          const after = { ...(await inner.exportModel()), ...(await inner.exportMoments()) };
          sameMaps(before.params, after.params, 'parameter');
          sameMaps(before.state, after.state, 'BN statistic');
          sameMaps(before.m, after.m, 'first moment');
          sameMaps(before.v, after.v, 'second moment');
          w[0] = keep;
          checked = true;
          return r;
        }),
    });
    assert.ok(checked);
    const log = readLog('transient');
    const skips = log.filter((r) => r.event === 'skip');
    assert.equal(
      skips.map((s) => s.step),
      [3],
    );
    assert.match(skips[0].reason!, /loss is NaN/);
    const losses = log.filter((r) => typeof r.loss === 'number' && r.event === undefined);
    assert.equal(
      losses.map((r) => r.step),
      [1, 2, 4, 5, 6, 7, 8],
    );
    assert.ok(losses.every((r) => Number.isFinite(r.loss)));
  },
);

/** Wraps a Device so that every `read` is counted (a readback: on WebGPU, a wait for the GPU). */
function countingDevice(dev: Device): { dev: Device; reads: () => number } {
  let n = 0;
  const read = ((t: never) => {
    n++;
    return dev.read(t);
  }) as Device['read'];
  const wrapped = new Proxy(dev, {
    get(target, key) {
      if (key === 'read') return read;
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { dev: wrapped, reads: () => n };
}

/** A raw device of `backend` (the webgpu tests are registered with backendTest: skipped without an adapter). */
async function rawDevice(backend: 'wasm' | 'webgpu'): Promise<Device> {
  if (backend === 'wasm') return (await import('../src/backend/wasm/node.ts')).createWasmDevice();
  return (await import('../src/backend/webgpu/device.ts')).createWebGpuDevice();
}

const HP = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1, alpha: 1 };
const tokens = Int32Array.from({ length: 2 * 16 }, (_, i) => (i * 37) % 256);

for (const backend of ['wasm', 'webgpu'] as const)
  backendTest(backend)(
    `device engine on ${backend}: a normal step reads nothing back; the result is one read when asked for`,
    async () => {
      const config = getPreset('tiny').config;
      const raw = await rawDevice(backend);
      const { dev, reads } = countingDevice(raw);
      const { params, state } = initParams(config, 3);
      const e = new DeviceEngine(dev, config, { config, params, state });
      try {
        for (let step = 1; step <= 6; step++) {
          const before = reads();
          const want = step % 3 === 0;
          const r = await e.trainStep([tokens], 2, 16, { ...HP, step }, want);
          assert.is(reads() - before, want ? 1 : 0, `${backend} step ${step}: readbacks`);
          if (want)
            assert.ok(
              r && Number.isFinite(r.loss) && r.gradNorm > 0 && !r.skipped && !r.faults,
              `${backend} step ${step}: ${JSON.stringify(r)}`,
            );
          else assert.is(r, null);
        }
      } finally {
        await e.dispose();
      }
    },
  );

for (const backend of ['wasm', 'webgpu'] as const)
  backendTest(backend)(
    `device engine on ${backend}: a step with a NaN weight is skipped on the device, changes nothing, and is ` +
      'reported at the next read',
    async () => {
      const config = getPreset('tiny').config;
      const raw = await rawDevice(backend);
      const { dev, reads } = countingDevice(raw);
      const { params, state } = initParams(config, 3);
      const p32: HostParams = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
      p32.get('model.layers.0.self_attn.q_proj.weight')![5] = NaN;
      const e = new DeviceEngine(dev, config, { config, params: p32, state });
      try {
        const before = { ...(await e.exportModel()), ...(await e.exportMoments()) };
        const n0 = reads();
        const r1 = await e.trainStep([tokens], 2, 16, { ...HP, step: 1 }, false);
        assert.is(r1, null, `${backend}: nothing is read for a step whose result was not asked for, skipped or not`);
        assert.is(reads(), n0);
        const mid = { ...(await e.exportModel()), ...(await e.exportMoments()) };
        sameMaps(before.params, mid.params, `${backend} parameter`);
        sameMaps(before.state, mid.state, `${backend} BN statistic`);
        sameMaps(before.m, mid.m, `${backend} first moment`);
        sameMaps(before.v, mid.v, `${backend} second moment`);
        // The next read reports both skipped steps: the counters lived on the device.
        const r2 = await e.trainStep([tokens], 2, 16, { ...HP, step: 2 }, true);
        assert.ok(r2?.skipped && r2.faults, `${backend}: ${JSON.stringify(r2)}`);
        assert.match(r2!.skipped!, /loss is NaN|gradient norm/);
        assert.equal(
          {
            count: r2!.faults!.count,
            streak: r2!.faults!.streak,
            from: r2!.faults!.streakFrom,
            last: r2!.faults!.lastStep,
          },
          { count: 2, streak: 2, from: 1, last: 2 },
        );
        assert.match(r2!.faults!.reason, /loss is NaN|gradient norm/);
        const after = { ...(await e.exportModel()), ...(await e.exportMoments()) };
        sameMaps(before.params, after.params, `${backend} parameter`);
        sameMaps(before.state, after.state, `${backend} BN statistic`);
        sameMaps(before.m, after.m, `${backend} first moment`);
        sameMaps(before.v, after.v, `${backend} second moment`);
        // Token ids outside the vocabulary are refused on the host, before they reach the device.
        const bad = tokens.slice();
        bad[17] = 256;
        let msg = '';
        await e.trainStep([bad], 2, 16, { ...HP, step: 3 }, true).catch((x: Error) => (msg = x.message));
        assert.match(msg, /token id 256 at row 1, position 1 is outside the vocabulary \[0, 256\)/);
      } finally {
        await e.dispose();
      }
    },
  );

for (const backend of ['wasm', 'webgpu'] as const)
  backendTest(backend)(
    `device engine on ${backend} in a run, --log-every 4: a transient NaN at step 3 is skipped on the device and ` +
      'logged at step 4; training goes on',
    async () => {
      const name = `transient4-${backend}`;
      const { o, config } = setup([
        '--backend',
        backend,
        '--steps',
        '12',
        '--log-every',
        '4',
        '--save-every',
        '100',
        '--name',
        name,
      ]);
      let poisoned = false;
      await train(o, config, false, {
        out: quiet,
        wrapEngine: (inner) =>
          wrap(inner, async (call, run) => {
            if (call !== 3) return run();
            // Poison one weight on the device for this step only, with device kernels (nothing read back).
            const eng = deviceInternals(inner);
            const w = eng.params.get('model.norm.weight')!;
            const keep = eng.dev.alloc('f32', w.length);
            const whole = {
              rows: 1,
              cols: w.length,
              dstLd: w.length,
              srcLd: w.length,
              dstOffset: 0,
              srcOffset: 0,
              accumulate: false,
            };
            eng.dev.kernels.copyBlock(keep, w, whole);
            eng.dev.kernels.fill(w, { n: 1, value: NaN });
            const r = await run();
            eng.dev.kernels.copyBlock(w, keep, whole);
            eng.dev.free(keep);
            poisoned = true;
            return r;
          }),
      });
      assert.ok(poisoned);
      const log = readLog(name) as (Rec & { skipped?: number; read_at?: number; streak?: number })[];
      const skips = log.filter((r) => r.event === 'skip');
      assert.equal(
        skips.map((r) => [r.step, r.skipped, r.read_at, r.streak]),
        [[3, 1, 4, 0]],
        `${backend}: ${JSON.stringify(skips)}`,
      );
      assert.match(skips[0].reason!, /loss is NaN|gradient norm/);
      const losses = log.filter((r) => typeof r.loss === 'number' && r.event === undefined);
      assert.equal(
        losses.map((r) => r.step),
        [1, 4, 8, 12],
      );
      assert.ok(losses.every((r) => Number.isFinite(r.loss)));
    },
  );

gpuTest(
  'WebGPU device lost mid-run: reported with the checkpoint to resume from; --resume finishes like an ' +
    'uninterrupted run',
  async () => {
    const flags = ['--backend', 'webgpu', '--steps', '8', '--save-every', '2'];
    const full = setup([...flags, '--name', 'gpu-full']);
    await train(full.o, full.config, false, { out: quiet });

    const part = setup([...flags, '--name', 'gpu-lost']);
    let err: Error | null = null;
    try {
      await train(part.o, part.config, false, {
        out: quiet,
        wrapEngine: (inner) =>
          wrap(inner, (call, run) => {
            if (call === 5) {
              const { dev } = deviceInternals(inner);
              if (!(dev instanceof WebGpuDevice)) throw new Error(`expected the webgpu device, found ${dev.name}`);
              dev.gpu.device.destroy();
            }
            return run();
          }),
      });
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err, 'the run went on after the device was destroyed');
    assert.match(err!.message, /step 5 failed on webgpu/);
    assert.match(err!.message, /WebGPU/);
    assert.match(
      err!.message,
      /the checkpoint of step 4 in \S+ is intact; continue with: monet train --resume --name gpu-lost/,
    );

    await train(part.o, part.config, true, { out: quiet });
    const a = readLog('gpu-full').filter((r) => typeof r.loss === 'number');
    const b = readLog('gpu-lost').filter((r) => typeof r.loss === 'number');
    assert.equal(
      b.map((r) => r.step),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    for (let i = 0; i < a.length; i++) {
      // Same device kind, same data and state: equal up to the trajectory test's cross-run tolerance (WebGPU does not
      // promise bit-identical reductions between two device instances).
      const rel = Math.abs(a[i].loss! - b[i].loss!) / Math.abs(a[i].loss!);
      assert.ok(rel < 1e-4, `step ${a[i].step}: uninterrupted ${a[i].loss}, resumed after device loss ${b[i].loss}`);
    }
  },
);

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
