// Our matmul against tfjs-backend-wasm (XNNPACK, one thread) at every shape a training step of a preset uses — not
// only squares: the shapes are recorded from one real step (forward, backward, optimiser) of the model.
//
//   node --import tsx bench/matmul-shapes.ts [--preset monet-vd-small] [--batch-size 16] [--seq-len 128]
//     [--rounds 15] [--out FILE]
//
// Each shape is timed in the layout the step uses (op(A) = Aᵀ or A, op(B) = Bᵀ or B — tf.matMul's transposeA /
// transposeB — and, for ours, accumulating into C when the step does, which only adds work). tfjs-backend-wasm's
// transposed products are much slower than its plain one, so for those layouts it is also timed transposing first
// (tf.transpose, then matMul, the transpose counted) and its faster form is the peer. Round-robin rounds (each
// implementation once per round), the best of each by process CPU time and by wall time; ratios by CPU time (every
// implementation here runs on this one thread). Target: ours ≥ 1.2× tfjs-backend-wasm at every shape.
// Writes the table to --out (default bench/results/matmul-shapes-<preset>.md) and every figure beside it (.json).
// Not a test.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { Device } from '../src/backend/device.ts';
import type { F32, KernelSignatures } from '../src/backend/kernels.ts';
import { createWasmDeviceFromBytes } from '../src/backend/wasm/device.ts';
import { enableRelaxedSimd, readWasmBytes } from '../src/backend/wasm/node.ts';
import { loadBrown } from '../src/train/corpus.ts';
import { BatchSampler, tokenizeDocs } from '../src/train/data.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import { parseFlags, type FlagSpec } from '../src/train/flags.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';
import { interleavedBest } from './wasm-matmul.ts';

const FLAGS: FlagSpec[] = [
  { name: 'preset', type: 'string', help: 'trainable preset (default monet-vd-small)' },
  { name: 'batch-size', type: 'int', positive: true, help: 'sequences per step (default 16)' },
  { name: 'seq-len', type: 'int', min: 2, help: 'tokens per sequence (default 128)' },
  { name: 'rounds', type: 'int', positive: true, help: 'round-robin rounds (default 15)' },
  { name: 'out', type: 'string', help: 'output file' },
];
const f = parseFlags('bench/matmul-shapes.ts', FLAGS, process.argv.slice(2));
const preset = (f.preset as string | undefined) ?? 'monet-vd-small';
const B = (f['batch-size'] as number | undefined) ?? 16;
const S = (f['seq-len'] as number | undefined) ?? 128;
const rounds = (f.rounds as number | undefined) ?? 15;
const out = (f.out as string | undefined) ?? `bench/results/matmul-shapes-${preset}.md`;

type Shape = Parameters<KernelSignatures['matmul']>[3];

/** The matmul shapes (with transposes and accumulation) of one training step, with how often each occurs. */
async function stepShapes(dev: Device): Promise<Map<string, { s: Shape; calls: number }>> {
  const config = getPreset(preset).config;
  if (S > config.max_position_embeddings) config.max_position_embeddings = S;
  const { params, state } = initParams(config, 1);
  const docs = tokenizeDocs(loadBrown().train.slice(0, 20), new ByteTokenizer()).tokens;
  const batch = new BatchSampler(docs, B, S, 3).next();
  const shapes = new Map<string, { s: Shape; calls: number }>();
  const matmul = dev.kernels.matmul;
  const kernels = {
    ...dev.kernels,
    matmul: (c: F32, a: F32, b: F32, s: Shape) => {
      const key = JSON.stringify(s);
      const e = shapes.get(key) ?? { s: { ...s }, calls: 0 };
      e.calls++;
      shapes.set(key, e);
      matmul(c, a, b, s);
    },
  };
  const recording = new Proxy(dev, { get: (d, k) => (k === 'kernels' ? kernels : Reflect.get(d, k, d)) });
  const engine = new DeviceEngine(recording, config, { config, params, state });
  const hp = { lr: 3e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1, step: 1, alpha: 0.5 };
  await engine.trainStep([batch], B, S, hp, true);
  await engine.dispose();
  return shapes;
}

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

enableRelaxedSimd();
const bytes = readWasmBytes();
const ours: [string, Device][] = [
  ['ours, relaxed SIMD', await createWasmDeviceFromBytes(bytes, { preferRelaxed: true })],
  ['ours, SIMD', await createWasmDeviceFromBytes(bytes, { preferRelaxed: false })],
];
const shapes = await stepShapes(await createWasmDeviceFromBytes(bytes, { preferRelaxed: true }));
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
setThreadsCount(1);
await tf.setBackend('wasm');
await tf.ready();

const load0 = loadavg();
const TFJS = 'tfjs-backend-wasm (1 thread)';
const TFJS_T = 'tfjs-backend-wasm, transpose then matMul';
const rows: { label: string; calls: number; flops: number; best: Map<string, { wallMs: number; cpuMs: number }> }[] =
  [];
for (const { s, calls } of [...shapes.values()].sort((a, b) => b.s.M * b.s.N * b.s.K - a.s.M * a.s.N * a.s.K)) {
  const { M, N, K, transA, transB } = s;
  const A = rand(M * K, 1);
  const Bm = rand(K * N, 2);
  const impls: [string, () => void][] = [];
  for (const [name, dev] of ours) {
    const a = dev.upload(A);
    const b = dev.upload(Bm);
    const c = dev.alloc('f32', M * N);
    dev.kernels.matmul(c, a, b, s);
    impls.push([name, () => dev.kernels.matmul(c, a, b, s)]);
  }
  const ta = transA ? tf.tensor2d(A, [K, M]) : tf.tensor2d(A, [M, K]);
  const tb = transB ? tf.tensor2d(Bm, [N, K]) : tf.tensor2d(Bm, [K, N]);
  tf.matMul(ta, tb, transA, transB).dispose();
  impls.push([TFJS, () => tf.matMul(ta, tb, transA, transB).dispose()]);
  // tfjs-backend-wasm's transposed products are far slower than its plain one: a user would transpose first
  const viaTranspose = () =>
    tf.tidy(() => tf.matMul(transA ? tf.transpose(ta) : ta, transB ? tf.transpose(tb) : tb)).dispose();
  if (transA || transB) {
    viaTranspose();
    impls.push([TFJS_T, viaTranspose]);
  }
  // several products per timing, so that each lasts a few milliseconds
  const reps = Math.max(1, Math.ceil(2e7 / (M * N * K)));
  const timed = impls.map(([n, fn]): [string, () => void] => [
    n,
    () => {
      for (let i = 0; i < reps; i++) fn();
    },
  ]);
  const best = interleavedBest(timed, rounds);
  for (const v of best.values()) {
    v.wallMs /= reps;
    v.cpuMs /= reps;
  }
  ta.dispose();
  tb.dispose();
  const op = `${transA ? 'Aᵀ' : 'A'}·${transB ? 'Bᵀ' : 'B'}${s.accumulate ? ' (C +=)' : ''}`;
  rows.push({ label: `${M}×${N}×${K}, ${op}`, calls, flops: 2 * M * N * K, best });
}

const gf = (flops: number, ms: number) => (flops / ms / 1e6).toFixed(1);
const lines = [
  `node --import tsx bench/matmul-shapes.ts ${process.argv.slice(2).join(' ')}`,
  `${new Date().toISOString()}; ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} logical CPUs; ` +
    `Node ${process.version}; @tensorflow/tfjs-backend-wasm ${tf.version_core}`,
  `load average ${load0.map((x) => x.toFixed(1)).join(' ')} at start, ` +
    `${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} at end`,
  `every matmul shape of one training step of ${preset} (batch ${B} × ${S}); best of ${rounds} round-robin rounds`,
  '',
  '| M×N×K, layout | calls / step | ours relaxed GFLOP/s (CPU) | ours SIMD (CPU) | tfjs matMul flags (CPU) | ' +
    'tfjs transpose + matMul (CPU) | × tfjs best, relaxed (CPU) | × tfjs best, SIMD (CPU) | ours relaxed (wall) | ' +
    'tfjs best (wall) |',
  '|---|---|---|---|---|---|---|---|---|---|',
];
let worst = Infinity;
const record: { shape: string; calls: number; gflopsCpu: Record<string, number>; ratioCpu: number }[] = [];
for (const r of rows) {
  const rel = r.best.get('ours, relaxed SIMD')!;
  const plain = r.best.get('ours, SIMD')!;
  const flags = r.best.get(TFJS)!;
  const viaT = r.best.get(TFJS_T);
  const t = viaT && viaT.cpuMs < flags.cpuMs ? viaT : flags;
  worst = Math.min(worst, t.cpuMs / rel.cpuMs);
  const gflopsCpu = Object.fromEntries([...r.best].map(([name, v]) => [name, r.flops / v.cpuMs / 1e6]));
  record.push({ shape: r.label, calls: r.calls, gflopsCpu, ratioCpu: t.cpuMs / rel.cpuMs });
  lines.push(
    `| ${r.label} | ${r.calls} | ${gf(r.flops, rel.cpuMs)} | ${gf(r.flops, plain.cpuMs)} | ` +
      `${gf(r.flops, flags.cpuMs)} | ${viaT ? gf(r.flops, viaT.cpuMs) : '–'} | ${(t.cpuMs / rel.cpuMs).toFixed(2)} | ` +
      `${(t.cpuMs / plain.cpuMs).toFixed(2)} | ${gf(r.flops, rel.wallMs)} | ${gf(r.flops, t.wallMs)} |`,
  );
}
lines.push('', `smallest ratio ours (relaxed SIMD, the default build) / tfjs's best by CPU time: ${worst.toFixed(2)}×`);
const text = lines.join('\n');
console.log(text);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${text}\n`);
const jsonOut = `${out.replace(/\.md$/, '')}.json`;
const json = {
  command: lines[0],
  load: [load0, loadavg()],
  preset,
  B,
  S,
  rounds,
  worstRatioCpu: worst,
  shapes: record,
};
writeFileSync(jsonOut, `${JSON.stringify(json, null, 2)}\n`);
console.error(`wrote ${out} and ${jsonOut}`);
