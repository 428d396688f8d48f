// Every layer kind, forward + backward (parameter gradients included), on every backend, at one realistic small
// size; peers where one computes the same layer: tfjs-backend-wasm (dense SwiGLU FFN in tfjs ops) and
// PyTorch (native, its own process: dense FFN and TopK FFN).
//
//   node --import tsx --import ./src/backend/webgpu/register-wgsl.mjs bench/layers.ts [--quick]
//   (normally run through `npm run bench`; see bench/run.ts)
//
// One benny suite per backend; WebGPU cases await the queue after each step (serialised: see lib/serial.ts).
// Software-GL WebGPU timings are labelled "not a performance figure".

import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { Scope } from '../src/backend/device.ts';
import { buildLayer, LAYER_KINDS, rnd, type BuiltLayer, type LayerKind, type LayerSpec } from './lib/layer-steps.ts';
import { openDevices } from './lib/devices.ts';
import { cpuBest, runSuite, serial, type CaseBudget } from './lib/serial.ts';
import { runTorch } from './lib/torch.ts';

export interface LayerResult {
  layer: LayerKind;
  size: string;
  backend: string;
  group: 'ours' | 'peer' | 'native';
  msPerStep: number; // median
  msBest: number; // fastest sample
  msCpu?: number; // best process CPU time of interleaved rounds (single-threaded backends and peers)
  tokensPerSec: number; // from the median
  samples: number;
  rme?: number;
  note?: string;
}

export interface LayersRun {
  T: number;
  d: number;
  results: LayerResult[];
  adapters: string[];
  notes: string[];
}

/** The sizes: T tokens of width d; each kind's own hyper-parameters (see lib/layer-steps.ts for their meaning). */
export function layerSpecs(quick: boolean): LayerSpec[] {
  const T = quick ? 16 : 256,
    d = quick ? 32 : 256;
  return quick
    ? [
        { kind: 'dense-ffn', T, d, F: 64 },
        { kind: 'smoe', T, d, E: 4, k: 2, F: 32, activation: 'swiglu' },
        { kind: 'topk-ffn', T, d, F: 64, k: 8 },
        { kind: 'peer', T, d, n: 8, H: 2, k: 4, dk: 16 },
        { kind: 'monet-hd', T, d, E: 8, H: 2, m: 8, topk: 2 },
        { kind: 'monet-vd', T, d, E: 8, H: 2, m: 8, topk: 2 },
      ]
    : [
        { kind: 'dense-ffn', T, d, F: 768 },
        { kind: 'smoe', T, d, E: 8, k: 2, F: 384, activation: 'swiglu' },
        { kind: 'topk-ffn', T, d, F: 1024, k: 64 },
        { kind: 'peer', T, d, n: 64, H: 4, k: 16, dk: 128 },
        { kind: 'monet-hd', T, d, E: 64, H: 4, m: 16, topk: 8 },
        { kind: 'monet-vd', T, d, E: 64, H: 4, m: 16, topk: 8 },
      ];
}

/** tfjs-backend-wasm on one thread (XNNPACK), as bench/wasm-matmul.ts configures it. */
export async function tfjsWasm(): Promise<string> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setThreadsCount(1);
  await tf.setBackend('wasm');
  await tf.ready();
  return `tfjs-core ${tf.version_core}, backend ${tf.getBackend()}, 1 thread`;
}

/**
 * The dense SwiGLU FFN in tfjs ops, forward and the same hand-written backward as src/layers/dense-ffn.ts (tfjs-core
 * alone registers no gradient functions, and its ESM build with them does not load in Node):
 *   gp = x·Wgᵀ, up = x·Wuᵀ, h = silu(gp) ⊙ up, y = h·Wdᵀ;
 *   dWd = dyᵀ·h, dh = dy·Wd, dup = dh ⊙ silu(gp), dgp = dh ⊙ up ⊙ silu'(gp), dWu = dupᵀ·x, dWg = dgpᵀ·x,
 *   dx = dup·Wu + dgp·Wg.   The wasm backend runs each op when called, so the step is synchronous.
 */
function tfjsDenseStep(T: number, d: number, F: number): { step: () => void; dispose: () => void } {
  const x = tf.tensor2d(rnd(T * d, 1), [T, d]);
  const dy = tf.tensor2d(rnd(T * d, 1), [T, d]);
  const s = 1 / Math.sqrt(d);
  const wg = tf.tensor2d(rnd(F * d, s), [F, d]),
    wu = tf.tensor2d(rnd(F * d, s), [F, d]),
    wd = tf.tensor2d(rnd(d * F, s), [d, F]);
  return {
    step: () =>
      tf.tidy(() => {
        const gp = tf.matMul(x, wg, false, true),
          up = tf.matMul(x, wu, false, true); // (T, F)
        const sg = tf.sigmoid(gp),
          silu = tf.mul(gp, sg);
        const h = tf.mul(silu, up) as tf.Tensor2D;
        tf.matMul(h, wd, false, true); // y (T, d)
        tf.matMul(dy, h, true, false); // dWd (d, F)
        const dh = tf.matMul(dy, wd); // (T, F)
        const dup = tf.mul(dh, silu) as tf.Tensor2D;
        // silu'(g) = s·(1 + g·(1 − s))
        const dgp = tf.mul(tf.mul(dh, up), tf.mul(sg, tf.add(1, tf.mul(gp, tf.sub(1, sg))))) as tf.Tensor2D;
        tf.matMul(dup, x, true, false); // dWu (F, d)
        tf.matMul(dgp, x, true, false); // dWg (F, d)
        tf.add(tf.matMul(dup, wu), tf.matMul(dgp, wg)); // dx (T, d)
      }),
    dispose: () => {
      for (const t of [x, dy, wg, wu, wd]) t.dispose();
    },
  };
}

export async function runLayers(opts: {
  quick: boolean;
  backends: readonly string[];
  torchThreads: number;
}): Promise<LayersRun> {
  const specs = layerSpecs(opts.quick);
  const { T, d } = specs[0];
  const results: LayerResult[] = [];
  const notes: string[] = [];
  const { devices, skipped } = await openDevices(opts.backends);
  for (const s of skipped) notes.push(`backend ${s.label} skipped: ${s.reason}`);
  const budget: CaseBudget = opts.quick ? { minSamples: 1, maxTime: 0.05 } : { minSamples: 3, maxTime: 1.5 };

  for (const bd of devices) {
    const built: BuiltLayer[] = specs.map((sp) => buildLayer(bd.dev, sp));
    const cases: [string, () => unknown, CaseBudget][] = built.map((l) => {
      const once = () => {
        const sc = new Scope(bd.dev);
        l.step(sc);
        sc.release();
      };
      const sync = bd.sync;
      return [
        l.kind,
        sync
          ? serial(async () => {
              once();
              await sync();
            })
          : once,
        budget,
      ];
    });
    const timed = await runSuite(`layers forward+backward on ${bd.dev.name} (T=${T}, d=${d})`, cases);
    // CPU time for the synchronous, single-threaded backends (not WebGPU: its work runs on the driver's threads)
    const cpu = bd.sync
      ? new Map<string, number>()
      : cpuBest(
          cases.map(([n, fn]) => [n, fn as () => void]),
          opts.quick ? 1 : 3,
        );
    for (const t of timed) {
      const l = built.find((b) => b.kind === t.name)!;
      results.push({
        layer: l.kind,
        size: l.desc,
        backend: bd.label,
        group: 'ours',
        msPerStep: t.median * 1000,
        msBest: t.min * 1000,
        msCpu: cpu.get(t.name),
        tokensPerSec: T / t.median,
        samples: t.samples,
        rme: t.rme,
        note: bd.note,
      });
    }
    for (const l of built) l.dispose();
    await bd.dev.dispose();
  }

  // Peers: tfjs-backend-wasm computes the dense FFN with its own autodiff.
  const dense = specs.find((s) => s.kind === 'dense-ffn') as Extract<LayerSpec, { kind: 'dense-ffn' }>;
  try {
    const desc = await tfjsWasm();
    const tfd = tfjsDenseStep(T, d, dense.F);
    const [t] = await runSuite(`dense-ffn forward+backward on ${desc}`, [['dense-ffn', tfd.step, budget]]);
    const cpu = cpuBest([['dense-ffn', tfd.step]], opts.quick ? 1 : 3).get('dense-ffn');
    results.push({
      layer: 'dense-ffn',
      size: `SwiGLU, F=${dense.F}`,
      backend: 'tfjs-backend-wasm',
      group: 'peer',
      msPerStep: t.median * 1000,
      msBest: t.min * 1000,
      msCpu: cpu,
      tokensPerSec: T / t.median,
      samples: t.samples,
      rme: t.rme,
      note: 'tfjs ops, same hand-written backward',
    });
    tfd.dispose();
  } catch (e) {
    notes.push(`tfjs-backend-wasm layer row absent: ${(e as Error).message.split('\n')[0]}`);
  }
  const topk = specs.find((s) => s.kind === 'topk-ffn') as Extract<LayerSpec, { kind: 'topk-ffn' }>;
  const tr = runTorch({
    threads: opts.torchThreads,
    dense: { T, d, F: dense.F },
    topk: { T, d, F: topk.F, k: topk.k },
    seconds: opts.quick ? 0.05 : 1,
  });
  if ('error' in tr) notes.push(`PyTorch layer rows absent: ${tr.error}`);
  else {
    for (const r of tr.layers) {
      const sp = specs.find((s) => s.kind === r.layer)!;
      results.push({
        layer: r.layer as LayerKind,
        size: sp.kind === 'dense-ffn' ? `SwiGLU, F=${dense.F}` : `F=${topk.F}, k=${topk.k}`,
        backend: `PyTorch ${tr.torch} (native, ${tr.threads} thread, ${tr.blas.kind})`,
        group: 'native',
        msPerStep: r.median_s * 1000,
        msBest: r.min_s * 1000,
        msCpu: r.cpu_s * 1000,
        tokensPerSec: T / r.median_s,
        samples: r.samples,
        note: `native, own process, ${tr.blas.kind} (${tr.blas.library}); not a peer in the same runtime`,
      });
    }
  }
  results.sort((a, b) => LAYER_KINDS.indexOf(a.layer) - LAYER_KINDS.indexOf(b.layer));
  return { T, d, results, adapters: devices.map((b) => b.dev.name), notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const r = await runLayers({ quick, backends: ['js', 'wasm', 'wasm-relaxed', 'webgpu'], torchThreads: 1 });
  const { layersTable } = await import('./report.ts');
  console.log(layersTable(r));
  for (const n of r.notes) console.log(`note: ${n}`);
}
