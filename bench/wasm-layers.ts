// Every layer, forward + backward, on our WASM kernels (one thread), and where the Monet layers spend their time.
//
//   node --import tsx bench/wasm-layers.ts [--tokens 1024] [--relaxed] [--no-benny] [--monet-only]
//   (--no-benny: only the CPU-time breakdown of part 2; --monet-only: that, for the two Monet layers only)
//
// Part 1 (benny, one suite, cases run one after another): forward+backward of each layer kind at a moderate size
// (T tokens, d = 512), including its parameter gradients; the table gives ms per step and tokens/s. The layers and
// their steps are bench/lib/layer-steps.ts's, as in bench/layers.ts and bench/scaling.ts; only the sizes are ours.
// Part 2: for every layer (the target concerns Monet-HD and Monet-VD, router included), the layer's time against
// the time of its matmuls alone:
// one instrumented run records every kernel call (WASM kernels run synchronously, so the process CPU time spent in
// a call is the kernel's time) and the recorded matmul calls are then replayed alone on the same tensors. Target (issue
// 5): ≥ 70 % of a Monet layer's time in matmuls, i.e. routing and the expert contractions must not dominate.
// Not a test: timings depend on the machine and on what else runs on it.

import b from 'benny';
import { cpus, loadavg } from 'node:os';
import { Scope, type Device } from '../src/backend/device.ts';
import { type AnyKernelCall, type KernelName, wrapKernels } from '../src/backend/kernels.ts';
import { createWasmDevice } from '../src/backend/wasm/node.ts';
import { buildLayer, type BuiltLayer, type LayerSpec } from './lib/layer-steps.ts';

const args = process.argv.slice(2);
const tokArg = args.indexOf('--tokens');
const T = tokArg >= 0 ? Number(args[tokArg + 1]) : 1024;
const d = 512;

/** A layer step: allocate what it needs in `sc`, run forward and backward. */
type Step = BuiltLayer['step'];

/**
 * The sizes (larger than bench/layers.ts's: one thread on a CPU, d = 512); see lib/layer-steps.ts for their meaning.
 */
function layerSpecs(T: number): LayerSpec[] {
  return [
    { kind: 'dense-ffn', T, d, F: 1536 },
    { kind: 'smoe', T, d, E: 8, k: 2, F: 768, activation: 'swiglu' },
    { kind: 'topk-ffn', T, d, F: 2048, k: 64 },
    { kind: 'peer', T, d, n: 128, H: 4, k: 16, dk: 128 },
    { kind: 'monet-hd', T, d, E: 128, H: 4, m: 16, topk: 8 },
    { kind: 'monet-vd', T, d, E: 128, H: 4, m: 16, topk: 8 },
  ];
}

const MATMULS: KernelName[] = ['matmul', 'matmulGrouped', 'matmulGroupedTN'];

/** This process's CPU time in ms (user + system). Single-threaded work: its compute time, whatever else runs. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs `step` once with every kernel call timed (CPU time); replays the recorded matmul calls alone. */
function breakdown(dev: Device, step: Step, replays = 5) {
  const time = new Map<string, number>();
  const recorded: [KernelName, unknown[]][] = [];
  const calls = new Map<KernelName, AnyKernelCall>();
  const timed = wrapKernels(dev.kernels, (name, call) => {
    calls.set(name, call);
    return (...a: unknown[]) => {
      if (MATMULS.includes(name)) recorded.push([name, a]);
      const t0 = cpuMs();
      call(...a);
      time.set(name, (time.get(name) ?? 0) + cpuMs() - t0);
    };
  });
  const tdev: Device = {
    name: dev.name,
    kernels: timed,
    alloc: dev.alloc.bind(dev) as Device['alloc'],
    upload: dev.upload.bind(dev) as Device['upload'],
    read: dev.read.bind(dev) as Device['read'],
    free: dev.free.bind(dev),
    dispose: () => {},
  };
  const sc = new Scope(tdev);
  const t0 = cpuMs();
  step(sc);
  const layerMs = cpuMs() - t0;
  let replayMs = Infinity;
  for (let r = 0; r < replays; r++) {
    const t1 = cpuMs();
    for (const [name, a] of recorded) calls.get(name)!(...a);
    replayMs = Math.min(replayMs, cpuMs() - t1);
  }
  sc.release();
  const kernelMs = [...time.values()].reduce((s, v) => s + v, 0);
  const matmulMs = MATMULS.reduce((s, n) => s + (time.get(n) ?? 0), 0);
  const top = [...time.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6);
  return { layerMs, kernelMs, matmulMs, replayMs, top, calls: recorded.length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dev = await createWasmDevice({ relaxed: args.includes('--relaxed') });
  const steps: Record<string, BuiltLayer> = Object.fromEntries(
    layerSpecs(T).map((sp) => [sp.kind, buildLayer(dev, sp)]),
  );
  const rows: { name: string; desc: string; ms: number; cpuMs?: number }[] = [];
  const part1 = !args.includes('--no-benny') && !args.includes('--monet-only');
  if (part1)
    await b.suite(
      `layers forward+backward on ${dev.name}, T=${T}, d=${d}`,
      ...Object.entries(steps).map(([name, { step }]) =>
        b.add(
          name,
          () => {
            const sc = new Scope(dev);
            step(sc);
            sc.release();
          },
          { minSamples: 5 },
        ),
      ),
      b.cycle(),
      b.complete((s) => {
        for (const r of s.results) rows.push({ name: r.name, desc: steps[r.name].desc, ms: r.details.mean * 1000 });
      }),
    );
  // CPU time of the fastest of a few more steps per layer: leaves out the slices this (single-threaded) process was
  // not running, so it stays meaningful on a shared machine
  for (const r of rows) {
    let best = Infinity;
    for (let i = 0; i < 4; i++) {
      const sc = new Scope(dev);
      const u0 = process.cpuUsage();
      steps[r.name].step(sc);
      const u = process.cpuUsage(u0);
      sc.release();
      best = Math.min(best, (u.user + u.system) / 1000);
    }
    r.cpuMs = best;
  }
  console.log(
    `\nCPU: ${cpus()[0]?.model ?? 'unknown'} (load average ${loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')}); Node ${process.version}; ${dev.name}; one thread; T=${T} tokens, d=${d}\n`,
  );
  if (part1)
    console.log(
      '| layer (forward + backward) | size | ms / step (benny mean) | tokens/s | CPU ms / step (best of 4) | ' +
        'tokens/s (CPU time) |\n|---|---|---|---|---|---|',
    );
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.desc} | ${r.ms.toFixed(1)} | ${Math.round((T / r.ms) * 1000)} | ${r.cpuMs!.toFixed(1)} | ` +
        `${Math.round((T / r.cpuMs!) * 1000)} |`,
    );
  }
  console.log(
    '\n| layer (CPU time) | layer ms | in matmul kernels | matmuls replayed alone | replay / layer | largest ' +
      'kernels (ms) |\n|---|---|---|---|---|---|',
  );
  const names = args.includes('--monet-only') ? ['monet-hd', 'monet-vd'] : Object.keys(steps);
  for (const name of names) {
    // best of three instrumented runs (the machine may be shared)
    let best: ReturnType<typeof breakdown> | null = null;
    for (let i = 0; i < 3; i++) {
      const r = breakdown(dev, steps[name].step);
      if (!best || r.layerMs < best.layerMs) best = r;
    }
    const r = best!;
    console.log(
      `| ${name} | ${r.layerMs.toFixed(1)} | ${r.matmulMs.toFixed(1)} ms ` +
        `(${((100 * r.matmulMs) / r.layerMs).toFixed(0)} %) | ${r.replayMs.toFixed(1)} ms (${r.calls} calls) | ` +
        `${((100 * r.replayMs) / r.layerMs).toFixed(0)} % | ` +
        `${r.top.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')} |`,
    );
  }
}
