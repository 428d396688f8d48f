// Cost as the number of experts N grows: Monet-HD, Monet-VD, SMoE and PEER at N = 16², 32², …, 512², same model
// width d, on the WASM SIMD backend (one thread). For each (model, N), measured:
//   - parameters: the sum of the lengths of the parameter tensors the layer allocated (router included for Monet);
//   - memory: the peak bytes of live device tensors over setup + one forward/backward (parameters, gradients,
//     inputs and every temporary; counted by a wrapping Device), and the process's resident set size after the step;
//   - forward + backward time per token: a benny case of one step over T tokens (wall median), and the best process
//     CPU time of three more steps (the figure used for growth: one thread, so CPU time is compute time, and it
//     leaves out the time other processes held the cores), divided by T;
//   - the time to zero the gradients (an optimiser's O(parameters) memset; not inside forward + backward).
// Then the growth exponent: the least-squares slope of log(quantity) against log(N), over every measured N and over
// the three largest. √N growth is a slope of 0.5; growth with N a slope of 1.
//
//   node --expose-gc --import tsx bench/scaling.ts [--quick]   (normally through `npm run bench`)
//
// Sizes (comparable active compute at small N; see docs/perf.md): d = 256, T = 128 tokens;
//   Monet: H = 4 heads, m = 16 (expert dim), topk = 8, √N = E experts per side; it evaluates all E·m hidden units
//     for every token (compute-dense, docs/spec.md §1.6), so its active compute grows with √N by design;
//   SMoE: N experts of width m = 16 (the width of one Monet composite expert), ReLU², top-8 (8·16 = 128 hidden
//     units per token);
//   PEER: N singleton experts, H = 8 heads × top-16 (128 hidden units per token), key_dim 128, GELU, train-mode BN.
// SMoE stops where its parameters and gradients no longer fit the 4 GiB address space of a wasm32 module; that
// point is measured (the allocation is attempted and its error recorded), not assumed.

import { Scope } from '../src/backend/device.ts';
import { buildLayer, countParams, zeroGrads, type LayerSpec } from './lib/layer-steps.ts';
import { countingDevice, openWasm } from './lib/devices.ts';
import { cpuBest, runSuite, type CaseBudget } from './lib/serial.ts';

export type ScalingModel = 'monet-hd' | 'monet-vd' | 'smoe' | 'peer';
export const SCALING_MODELS: readonly ScalingModel[] = ['monet-hd', 'monet-vd', 'smoe', 'peer'];

export interface ScalingResult {
  model: ScalingModel;
  sqrtN: number;
  N: number;
  status: 'ok' | 'infeasible';
  reason?: string;
  params?: number; // measured from the allocated tensors
  peakTensorBytes?: number;
  rssBytes?: number;
  msPerStep?: number; // median
  msBest?: number; // fastest sample
  msCpu?: number; // best process CPU time of 3 steps (one thread: compute time; the machine may be shared)
  usPerToken?: number; // from msCpu (the figure the growth exponent uses)
  usPerTokenWall?: number; // from the median wall time
  zeroGradMs?: number;
  forwardFlopsPerToken?: number; // napkin math of the layer's dense products (not measured)
  samples?: number;
}

export interface Growth {
  model: ScalingModel;
  quantity: 'params' | 'usPerToken' | 'peakTensorBytes';
  slopeAll: number;
  slopeLast3: number;
  points: number;
}

export interface ScalingRun {
  T: number;
  d: number;
  device: string;
  results: ScalingResult[];
  growth: Growth[];
  notes: string[];
}

export function scalingSpec(model: ScalingModel, sqrtN: number, quick: boolean): LayerSpec {
  const T = quick ? 8 : 128,
    d = quick ? 32 : 256;
  switch (model) {
    case 'monet-hd':
    case 'monet-vd':
      return { kind: model, T, d, E: sqrtN, H: quick ? 2 : 4, m: quick ? 8 : 16, topk: quick ? 2 : 8 };
    case 'smoe':
      return { kind: 'smoe', T, d, E: sqrtN * sqrtN, k: quick ? 2 : 8, F: quick ? 8 : 16, activation: 'relu2' };
    case 'peer':
      return { kind: 'peer', T, d, n: sqrtN, H: quick ? 2 : 8, k: quick ? 4 : 16, dk: quick ? 16 : 128 };
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Least-squares slope of log y on log x. */
export function logSlope(pts: [number, number][]): number {
  const n = pts.length;
  if (n < 2) return NaN;
  const lx = pts.map(([x]) => Math.log(x)),
    ly = pts.map(([, y]) => Math.log(y));
  const mx = lx.reduce((s, v) => s + v, 0) / n,
    my = ly.reduce((s, v) => s + v, 0) / n;
  let num = 0,
    den = 0;
  for (let i = 0; i < n; i++) {
    num += (lx[i] - mx) * (ly[i] - my);
    den += (lx[i] - mx) ** 2;
  }
  return num / den;
}

export function growth(results: ScalingResult[]): Growth[] {
  const out: Growth[] = [];
  for (const model of SCALING_MODELS) {
    const ok = results.filter((r) => r.model === model && r.status === 'ok').sort((a, b) => a.N - b.N);
    for (const quantity of ['params', 'usPerToken', 'peakTensorBytes'] as const) {
      const pts = ok.map((r) => [r.N, r[quantity]!] as [number, number]);
      out.push({ model, quantity, slopeAll: logSlope(pts), slopeLast3: logSlope(pts.slice(-3)), points: pts.length });
    }
  }
  return out;
}

export async function runScaling(opts: {
  quick: boolean;
  sqrtNs?: number[];
  models?: readonly ScalingModel[];
  time?: boolean;
}): Promise<ScalingRun> {
  const sqrtNs = opts.sqrtNs ?? (opts.quick ? [4, 8] : [16, 32, 64, 128, 256, 512]);
  const models = opts.models ?? SCALING_MODELS;
  const withTime = opts.time ?? true;
  const results: ScalingResult[] = [];
  const notes: string[] = [];
  if (!gc)
    notes.push(
      'run without --expose-gc: resident set sizes include memory of earlier configurations not yet collected',
    );
  const budget: CaseBudget = opts.quick ? { minSamples: 1, maxTime: 0.05 } : { minSamples: 3, maxTime: 1 };
  let deviceName = '';
  let T = 0,
    d = 0;
  for (const model of models) {
    for (const sqrtN of sqrtNs) {
      const spec = scalingSpec(model, sqrtN, opts.quick);
      T = spec.T;
      d = spec.d;
      const row: ScalingResult = { model, sqrtN, N: sqrtN * sqrtN, status: 'ok' };
      results.push(row);
      gc?.();
      // a fresh device per configuration: its memory holds this model only, and is released with it
      const dev = countingDevice(await openWasm(false));
      deviceName = dev.name;
      try {
        const layer = buildLayer(dev, spec);
        row.params = countParams(layer);
        row.forwardFlopsPerToken = layer.forwardFlopsPerToken;
        const once = () => {
          const sc = new Scope(dev);
          layer.step(sc);
          sc.release();
        };
        once(); // warm-up; also brings the tensor peak to its steady value
        row.peakTensorBytes = dev.bytes.peak;
        if (withTime) {
          const [t] = await runSuite(`${model} N=${sqrtN}² forward+backward (T=${T}, d=${d}, ${dev.name})`, [
            [`${model} N=${sqrtN}²`, once, budget],
          ]);
          row.msPerStep = t.median * 1000;
          row.msBest = t.min * 1000;
          row.msCpu = cpuBest([['step', once]], opts.quick ? 1 : 3).get('step')!;
          row.usPerToken = (row.msCpu / T) * 1e3;
          row.usPerTokenWall = (t.median / T) * 1e6;
          row.samples = t.samples;
          let best = Infinity;
          for (let i = 0; i < 3; i++) {
            const t0 = performance.now();
            zeroGrads(dev, layer);
            best = Math.min(best, performance.now() - t0);
          }
          row.zeroGradMs = best;
        }
        row.rssBytes = process.memoryUsage().rss;
        layer.dispose();
      } catch (e) {
        row.status = 'infeasible';
        row.reason = (e as Error).message.split('\n')[0];
        console.log(`${model} N=${sqrtN}²: not measured: ${row.reason}`);
      }
      await dev.dispose();
    }
  }
  return { T, d, device: deviceName, results, growth: growth(results), notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const r = await runScaling({ quick });
  const { scalingTable } = await import('./report.ts');
  console.log(scalingTable(r));
}
