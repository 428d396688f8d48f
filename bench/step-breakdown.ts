// Where the time of one training step goes: every kernel call of a step (forward, backward, gradient norm,
// skip/clip decision, AdamW) on the WASM backend, timed one by one, grouped by kernel (matrix products by shape).
//
//   node --import tsx bench/step-breakdown.ts [--preset monet-vd-small] [--threads 1] [--batch-size 16]
//     [--seq-len 128] [--steps 3] [--out FILE]
//
// WASM kernels run synchronously, so the time between entering and leaving a kernel call is that kernel's: wall
// clock (performance.now) and process CPU time (process.cpuUsage: all threads of the process, so with N threads a
// kernel's CPU time is up to N times its wall time). Timing each call adds a few microseconds per call; the table
// also gives the untimed step and what lies outside the kernels (JavaScript between calls, allocation).
// With threads, from the device's thread counters (WasmDevice.threadStats): jobs (kernel calls split between
// threads) per step, the parts each thread ran, how long the calling thread waited at the end of jobs for the other
// threads' parts, and how often a worker had gone to sleep before a job (a wake-up: tens of microseconds).
// Matrix products get their GFLOP/s (2·M·N·K per product); attention's nominal count is the full S×S products.
// Writes the table to --out (default bench/results/step-breakdown-<preset>-<threads>t.md). Not a test.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import type { Device } from '../src/backend/device.ts';
import type { WasmDevice } from '../src/backend/wasm/device.ts';
import { wrapKernels } from '../src/backend/kernels.ts';
import { createWasmDevice } from '../src/backend/wasm/node.ts';
import { loadBrown } from '../src/train/corpus.ts';
import { BatchSampler, tokenizeDocs } from '../src/train/data.ts';
import { DeviceEngine } from '../src/train/engine-device.ts';
import { parseFlags, type FlagSpec } from '../src/train/flags.ts';
import { initParams } from '../src/train/init.ts';
import { getPreset } from '../src/train/presets.ts';
import { ByteTokenizer } from '../src/train/tokenizer.ts';

const FLAGS: FlagSpec[] = [
  { name: 'preset', type: 'string', help: 'trainable preset (default monet-vd-small)' },
  { name: 'threads', type: 'int', positive: true, help: 'threads of the wasm device (default 1)' },
  { name: 'batch-size', type: 'int', positive: true, help: 'sequences per step (default 16)' },
  { name: 'seq-len', type: 'int', min: 2, help: 'tokens per sequence (default 128)' },
  { name: 'steps', type: 'int', positive: true, help: 'timed steps, averaged (default 3)' },
  { name: 'out', type: 'string', help: 'output file' },
];
const f = parseFlags('bench/step-breakdown.ts', FLAGS, process.argv.slice(2));
const preset = (f.preset as string | undefined) ?? 'monet-vd-small';
const threads = (f.threads as number | undefined) ?? 1;
const B = (f['batch-size'] as number | undefined) ?? 16;
const S = (f['seq-len'] as number | undefined) ?? 128;
const steps = (f.steps as number | undefined) ?? 3;
const out = (f.out as string | undefined) ?? `bench/results/step-breakdown-${preset}-${threads}t.md`;

const config = getPreset(preset).config;
if (S > config.max_position_embeddings) config.max_position_embeddings = S;
const { params, state } = initParams(config, 1);
const docs = tokenizeDocs(loadBrown().train.slice(0, 20), new ByteTokenizer()).tokens;
const batch = new BatchSampler(docs, B, S, 3).next();
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

interface Entry {
  calls: number;
  wall: number; // ms
  cpu: number; // ms
  flops: number;
  jobs: number; // calls split between threads
  wait: number; // ms the calling thread waited for the other threads' parts
  sleeps: number; // wake-ups the workers needed (they had gone to sleep before the job)
}
const table = new Map<string, Entry>();
let timing = false;

/** The row a call is counted in, and its floating-point operations (matrix products only). */
function classify(name: string, s: Record<string, number | boolean>): [string, number] {
  const n = (k: string) => s[k] as number;
  switch (name) {
    case 'matmul': {
      const op = `A${s.transA ? 'ᵀ' : ''}·B${s.transB ? 'ᵀ' : ''}${s.accumulate ? ', +=' : ''}`;
      return [`matmul ${n('M')}×${n('N')}×${n('K')} (${op})`, 2 * n('M') * n('N') * n('K')];
    }
    case 'matmulGrouped':
    case 'matmulGroupedTN':
      return [`${name} ${n('P')}×${n('N')}×${n('K')}, ${n('G')} groups`, 2 * n('P') * n('N') * n('K')];
    case 'attention':
      return [name, 4 * n('B') * n('nH') * n('S') * n('S') * n('hd')];
    case 'attentionBackward':
      return [name, 8 * n('B') * n('nH') * n('S') * n('S') * n('hd')];
    default:
      return [name, 0];
  }
}

const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);

/** The device with every kernel call timed while `timing` is on. */
function timedDevice(dev: WasmDevice): Device {
  const kernels = wrapKernels(dev.kernels, (name, call) => (...a: unknown[]) => {
    if (!timing) return call(...a);
    const s0 = dev.threadStats();
    const c0 = cpuMs();
    const t0 = performance.now();
    call(...a);
    const wall = performance.now() - t0;
    const cpu = cpuMs() - c0;
    const s1 = dev.threadStats();
    const [key, flops] = classify(name, a[a.length - 1] as Record<string, number | boolean>);
    const e = table.get(key) ?? { calls: 0, wall: 0, cpu: 0, flops: 0, jobs: 0, wait: 0, sleeps: 0 };
    e.calls++;
    e.wall += wall;
    e.cpu += cpu;
    e.flops += flops;
    e.jobs += s1.jobs - s0.jobs;
    e.wait += s1.waitMs - s0.waitMs;
    e.sleeps += sum(s1.sleeps) - sum(s0.sleeps);
    table.set(key, e);
  });
  return new Proxy(dev, { get: (d, k) => (k === 'kernels' ? kernels : Reflect.get(d, k, d)) });
}

const dev = await createWasmDevice({ threads });
const engine = new DeviceEngine(timedDevice(dev), config, { config, params, state });
const hp = (i: number) => ({
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  clip: 1,
  step: i,
  alpha: 0.5,
});
let stepNo = 1;
const load0 = loadavg();
for (let i = 0; i < 2; i++) await engine.trainStep([batch], B, S, hp(stepNo++), true);
// untimed steps first: the step's own time
let plainWall = Infinity;
let plainCpu = Infinity;
const plainStats0 = dev.threadStats();
for (let i = 0; i < steps; i++) {
  const c0 = cpuMs();
  const t0 = performance.now();
  await engine.trainStep([batch], B, S, hp(stepNo++), true);
  plainWall = Math.min(plainWall, performance.now() - t0);
  plainCpu = Math.min(plainCpu, cpuMs() - c0);
}
const plainStats1 = dev.threadStats();
timing = true;
const c0 = cpuMs();
const t0 = performance.now();
for (let i = 0; i < steps; i++) await engine.trainStep([batch], B, S, hp(stepNo++), true);
const timedWall = (performance.now() - t0) / steps;
const timedCpu = (cpuMs() - c0) / steps;
timing = false;
await engine.dispose();

const rows = [...table].map(([k, e]) => ({ k, ...e })).sort((a, b) => b.wall - a.wall);
const sumWall = rows.reduce((s, r) => s + r.wall, 0) / steps;
const sumCpu = rows.reduce((s, r) => s + r.cpu, 0) / steps;
const flops = rows.reduce((s, r) => s + r.flops, 0) / steps;
const mmWall = rows.filter((r) => r.flops > 0).reduce((s, r) => s + r.wall, 0) / steps;
const f1 = (x: number) => x.toFixed(1);
const perStep = (a: number, b: number) => f1((b - a) / steps);
const threadLines =
  threads > 1
    ? [
        `threads, untimed steps (per step): ${perStep(plainStats0.jobs, plainStats1.jobs)} jobs in ` +
          `${perStep(plainStats0.parts, plainStats1.parts)} parts, run by thread ` +
          plainStats1.partsBy.map((p, t) => `${t}: ${perStep(plainStats0.partsBy[t], p)}`).join(', ') +
          `; ${perStep(plainStats0.jobsAlone, plainStats1.jobsAlone)} jobs run by the calling thread alone; ` +
          `workers slept ${perStep(sum(plainStats0.sleeps), sum(plainStats1.sleeps))} times; calling thread in ` +
          `jobs ${perStep(plainStats0.runMs, plainStats1.runMs)} ms running parts, ` +
          `${perStep(plainStats0.waitMs, plainStats1.waitMs)} ms waiting for the others' parts`,
      ]
    : [];
const lines = [
  `node --import tsx bench/step-breakdown.ts ${process.argv.slice(2).join(' ')}`,
  `${new Date().toISOString()}; ${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} logical CPUs; ${dev.name}; ` +
    `Node ${process.version}`,
  `load average ${load0.map(f1).join(' ')} at start, ${loadavg().map(f1).join(' ')} at end`,
  `${preset}, batch ${B} × ${S} = ${B * S} tokens; ${steps} steps averaged (best of ${steps} for the untimed step)`,
  '',
  `untimed step: ${f1(plainWall)} ms wall (${Math.round((B * S) / (plainWall / 1000))} tokens/s), ` +
    `${f1(plainCpu)} ms CPU time`,
  `timed step: ${f1(timedWall)} ms wall, ${f1(timedCpu)} ms CPU; ` +
    `in kernels ${f1(sumWall)} ms wall, ${f1(sumCpu)} ms CPU; ` +
    `outside kernels (JavaScript, allocation, timing) ${f1(timedWall - sumWall)} ms wall`,
  `matrix products and attention: ${(flops / 1e9).toFixed(2)} GFLOP per step (nominal), ${f1(mmWall)} ms wall ` +
    `(${f1(flops / mmWall / 1e6)} GFLOP/s), ${f1((100 * mmWall) / sumWall)} % of the kernel time`,
  ...threadLines,
  '',
  '| kernel | calls / step | ms / step (wall) | % | ms / step (CPU) | GFLOP/s (wall) |' +
    (threads > 1 ? ' jobs / step | waiting ms / step | worker wake-ups / step |' : ''),
  `|---|---|---|---|---|---|${threads > 1 ? '---|---|---|' : ''}`,
  ...rows.map(
    (r) =>
      `| ${r.k} | ${r.calls / steps} | ${(r.wall / steps).toFixed(2)} | ${f1((100 * r.wall) / steps / sumWall)} | ` +
      `${(r.cpu / steps).toFixed(2)} | ${r.flops ? f1(r.flops / r.wall / 1e6) : ''} |` +
      (threads > 1 ? ` ${r.jobs / steps} | ${(r.wait / steps).toFixed(2)} | ${r.sleeps / steps} |` : ''),
  ),
];
const text = lines.join('\n');
console.log(text);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${text}\n`);
console.error(`wrote ${out}`);
