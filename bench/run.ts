// `npm run bench`: every benchmark, one after another, then the tables on the terminal and the files under
// bench/results/ (JSON with the machine, one CSV per table, a self-contained HTML/SVG chart).
//
//   npm run bench                       full run (≈ 10 min on a 2-core machine with the CPU backends)
//   npm run bench -- --quick            tiny sizes: checks the plumbing in about a minute; figures mean nothing
//   npm run bench -- --only matmul,scaling   a subset (matmul, layers, scaling)
//   npm run bench -- --out DIR          write the files elsewhere (default bench/results; prefix 'latest', or
//                                       'quick' for --quick, so a smoke run never overwrites the full figures)
//
// Not a test: nothing here asserts a speed. Timings depend on the machine and on what else runs on it; the load
// average at the start and the end is recorded next to the figures.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { finishMachineInfo, machineInfo } from './lib/machine.ts';
import { wasmFeatures } from './lib/devices.ts';
import { runMatmul } from './matmul.ts';
import { runLayers, tfjsWasm } from './layers.ts';
import { runScaling } from './scaling.ts';
import { layersTable, machineLines, matmulTable, scalingTable, writeResults, type BenchResults } from './report.ts';

export interface RunOptions {
  quick: boolean;
  only: string[];
  out: string;
  prefix: string;
  /** Layer-suite backends (js, wasm, wasm-relaxed, webgpu). */
  backends: string[];
  torchThreads: number;
}

export function parseArgs(argv: string[]): RunOptions {
  const quick = argv.includes('--quick');
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--'))
      throw new Error(`bench: ${flag} expects a value, found ${v ?? 'nothing'}`);
    return v;
  };
  const known = ['--quick', '--only', '--out', '--prefix', '--backends'];
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) continue;
    if (!known.includes(argv[i]))
      throw new Error(`bench: unknown option ${argv[i]}; expected one of ${known.join(', ')}`);
  }
  const only = (value('--only') ?? 'matmul,layers,scaling').split(',');
  for (const o of only)
    if (!['matmul', 'layers', 'scaling'].includes(o))
      throw new Error(`bench: --only expects matmul, layers and/or scaling, found '${o}'`);
  return {
    quick,
    only,
    out: value('--out') ?? fileURLToPath(new URL('./results/', import.meta.url)),
    prefix: value('--prefix') ?? (quick ? 'quick' : 'latest'),
    backends: (value('--backends') ?? 'js,wasm,wasm-relaxed,webgpu').split(','),
    torchThreads: 1,
  };
}

export async function runBench(o: RunOptions, command: string): Promise<{ results: BenchResults; files: string[] }> {
  const t0 = Date.now();
  const feats = wasmFeatures();
  const machine = machineInfo(feats.simd, feats.relaxed);
  const notes: string[] = [];
  const results: BenchResults = {
    schema: 'monet-ts-bench/1',
    command,
    quick: o.quick,
    startedAt: new Date(t0).toISOString(),
    finishedAt: '',
    elapsedSeconds: 0,
    machine,
    notes,
  };
  if (machine.loadAvgStart[0] > machine.logicalCores * 0.5) {
    notes.push(
      `the machine was busy when the run started (1-minute load average ${machine.loadAvgStart[0]} on ` +
        `${machine.logicalCores} cores): figures are noisy and likely pessimistic`,
    );
  }
  if (o.only.includes('matmul')) {
    const m = await runMatmul({
      sizes: o.quick ? [64, 128] : [256, 512, 1024],
      quick: o.quick,
      torchThreads: o.torchThreads,
    });
    results.matmul = { results: m.results, notes: m.notes };
    machine.webgpuAdapter = m.webgpuAdapter;
    machine.gpujsModes = m.gpujsModes;
    machine.torch = m.torch;
    notes.push(...m.notes);
  }
  if (o.only.includes('layers')) {
    const l = await runLayers({ quick: o.quick, backends: o.backends, torchThreads: o.torchThreads });
    results.layers = l;
    machine.webgpuAdapter ??= l.adapters.find((a) => a.startsWith('webgpu'));
    notes.push(...l.notes);
  }
  machine.tfjs = await tfjsWasm().catch((e: Error) => `tfjs-backend-wasm unavailable: ${e.message}`);
  if (o.only.includes('scaling')) {
    const s = await runScaling({ quick: o.quick });
    results.scaling = s;
    notes.push(...s.notes);
  }
  finishMachineInfo(machine);
  results.finishedAt = new Date().toISOString();
  results.elapsedSeconds = (Date.now() - t0) / 1000;
  const files = writeResults(results, o.out, o.prefix);
  return { results, files };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const o = parseArgs(argv);
  const { results: r, files } = await runBench(o, ['npm run bench', ...(argv.length ? ['--', ...argv] : [])].join(' '));
  console.log(`\n${machineLines(r.machine)}\n`);
  if (r.matmul) console.log(`## Matmul (float32, one thread)\n\n${matmulTable(r.matmul.results)}\n`);
  if (r.layers) console.log(`## Layers, forward + backward\n\n${layersTable(r.layers)}\n`);
  if (r.scaling) console.log(`## Scaling with the number of experts\n\n${scalingTable(r.scaling)}\n`);
  for (const n of r.notes) console.log(`note: ${n}`);
  console.log(
    `\n${r.quick ? 'quick run (figures mean nothing); ' : ''}${r.elapsedSeconds.toFixed(0)} s; wrote ` +
      `${files.map((f) => join(f)).join(', ')}`,
  );
}
