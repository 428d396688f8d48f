// Every layer, forward + backward, on our WASM kernels (one thread), and where the Monet layers spend their time.
//
//   node --import tsx bench/wasm-layers.ts [--tokens 1024] [--relaxed] [--no-benny] [--monet-only]
//   (--no-benny: only the CPU-time breakdown of part 2; --monet-only: that, for the two Monet layers only)
//
// Part 1 (benny, one suite, cases run one after another): forward+backward of each layer kind at a moderate size
// (T tokens, d = 512), including its parameter gradients; the table gives ms per step and tokens/s.
// Part 2: for every layer (the target concerns Monet-HD and Monet-VD, router included), the layer's time against
// the time of its matmuls alone:
// one instrumented run records every kernel call (WASM kernels run synchronously, so the process CPU time spent in
// a call is the kernel's time) and the recorded matmul calls are then replayed alone on the same tensors. Target (issue 5):
// ≥ 70 % of a Monet layer's time in matmuls, i.e. routing and the expert contractions must not dominate.
// Not a test: timings depend on the machine and on what else runs on it.

import b from 'benny';
import { cpus, loadavg } from 'node:os';
import { Scope, type Device } from '../src/backend/device.ts';
import { KERNELS, type F32, type Kernels, type KernelName } from '../src/backend/kernels.ts';
import { createWasmDevice } from '../src/backend/wasm/node.ts';
import { denseFfnBackward, denseFfnForward } from '../src/layers/dense-ffn.ts';
import { smoeBackward, smoeForward } from '../src/layers/smoe.ts';
import { topkFfnBackward, topkFfnForward } from '../src/layers/topk.ts';
import { peerBackward, peerForward } from '../src/layers/peer.ts';
import { monetAuxBackward, monetAuxForward, monetRouterBackward, monetRouterForward, type MonetRouterConfig } from '../src/layers/monet-router.ts';
import { monetHdBackward, monetHdForward } from '../src/layers/monet-hd.ts';
import { monetVdBackward, monetVdForward } from '../src/layers/monet-vd.ts';
import { monetSigma } from '../reference/normal.ts';

const args = process.argv.slice(2);
const tokArg = args.indexOf('--tokens');
const T = tokArg >= 0 ? Number(args[tokArg + 1]) : 1024;
const d = 512;

let seed = 7;
function rnd(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1) * scale;
  return a;
}

/** A layer step: allocate what it needs in `sc`, run forward and backward. */
type Step = (sc: Scope) => void;

/** Parameters and their gradients for a layer, uploaded once and reused by every step. */
function params(dev: Device, shapes: Record<string, number>, scale = 0.05): { p: Record<string, F32>; g: Record<string, F32> } {
  const p: Record<string, F32> = {}, g: Record<string, F32> = {};
  for (const [k, n] of Object.entries(shapes)) {
    p[k] = dev.upload(rnd(n, scale));
    g[k] = dev.alloc('f32', n);
  }
  return { p, g };
}

function layerSteps(dev: Device): Record<string, { step: Step; desc: string }> {
  const x = dev.upload(rnd(T * d, 1));
  const dy = dev.upload(rnd(T * d, 1));
  const steps: Record<string, { step: Step; desc: string }> = {};

  {
    const F = 1536;
    const { p, g } = params(dev, { gate: F * d, up: F * d, down: d * F });
    const cfg = { d, F, activation: 'swiglu' as const };
    steps['dense-ffn'] = {
      desc: `swiglu, F=${F}`,
      step: (sc) => {
        const y = sc.f32(T * d), dx = sc.f32(T * d);
        const s = denseFfnForward(sc, y, x, p as never, cfg, T);
        denseFfnBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T);
      },
    };
  }
  {
    const E = 8, k = 2, F = 768;
    const { p, g } = params(dev, { gate: E * d, w1: E * F * d, w2: E * d * F, w3: E * F * d });
    const cfg = { d, F, E, k, activation: 'swiglu' as const };
    steps.smoe = {
      desc: `E=${E}, k=${k}, F=${F}, swiglu`,
      step: (sc) => {
        const y = sc.f32(T * d), dx = sc.f32(T * d), lb = sc.f32(1), lz = sc.f32(1);
        const s = smoeForward(sc, y, { balance: lb, z: lz }, x, p as never, cfg, T);
        smoeBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T, 0.01, 0.001);
      },
    };
  }
  {
    const F = 2048, k = 64;
    const { p, g } = params(dev, { up: F * d, down: d * F });
    const cfg = { d, F, k, alpha: 0 };
    steps['topk-ffn'] = {
      desc: `F=${F}, k=${k}`,
      step: (sc) => {
        const y = sc.f32(T * d), dx = sc.f32(T * d);
        const s = topkFfnForward(sc, y, x, p as never, cfg, T);
        topkFfnBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T);
      },
    };
  }
  {
    const n = 128, N = n * n, H = 4, k = 16, dk = 128;
    const { p, g } = params(dev, { query: H * dk * d, queryBias: H * dk, subKeys: 2 * n * (dk / 2), wDown: N * d, wUp: N * d });
    p.bnWeight = dev.upload(new Float32Array(H * dk).fill(1));
    p.bnBias = dev.alloc('f32', H * dk);
    g.bnWeight = dev.alloc('f32', H * dk);
    g.bnBias = dev.alloc('f32', H * dk);
    const state = { runningMean: dev.alloc('f32', H * dk), runningVar: dev.upload(new Float32Array(H * dk).fill(1)) };
    const cfg = { d, N, n, H, k, dk, activation: 'gelu' as const, mode: 'train' as const, bnEps: 1e-5, bnMomentum: 0.1 };
    steps.peer = {
      desc: `N=${n}², H=${H}, k=${k}, key_dim=${dk}`,
      step: (sc) => {
        const y = sc.f32(T * d), dx = sc.f32(T * d);
        const s = peerForward(sc, y, x, p as never, state, cfg, T);
        peerBackward(sc, dx, g as never, dy, x, p as never, s, cfg, T);
      },
    };
  }
  for (const decompose of ['horizontal', 'vertical'] as const) {
    const E = 128, H = 4, m = 16, topk = 8;
    const rc: MonetRouterConfig = { d, H, E, topk, mode: 'train', bnEps: 1e-5, bnMomentum: 0.1, sigma: monetSigma(topk, E) };
    const r = params(dev, { w1: H * E * d, w2: H * E * d });
    const state = { mean1: dev.alloc('f32', H), var1: dev.upload(new Float32Array(H).fill(1)), mean2: dev.alloc('f32', H), var2: dev.upload(new Float32Array(H).fill(1)) };
    const dims = { T, d, H, E, m };
    const Em = E * m, Eh = (E * m) / 2, dh = d / 2;
    const moe = decompose === 'horizontal'
      ? params(dev, { u: Em * d, ub: Em, v: d * Em, b: E * d })
      : params(dev, { u1: Eh * d, u1b: Eh, u2: Eh * d, u2b: Eh, v11: dh * Eh, v12: dh * Eh, v21: dh * Eh, v22: dh * Eh, b1: E * dh, b2: E * dh });
    steps[decompose === 'horizontal' ? 'monet-hd' : 'monet-vd'] = {
      desc: `√N=${E}, H=${H}, m=${m}, topk=${topk}, router included`,
      step: (sc) => {
        const rs = monetRouterForward(sc, x, r.p as never, state, rc, T);
        const unif = sc.f32(1), amb = sc.f32(1);
        monetAuxForward(sc, unif, amb, rs, H, E, T, 1e-10);
        const y = sc.f32(T * d), dx = sc.f32(T * d), dg1 = sc.f32(T * H * E), dg2 = sc.f32(T * H * E);
        if (decompose === 'horizontal') {
          const s = monetHdForward(sc, y, x, rs.g1, rs.g2, moe.p as never, dims);
          monetHdBackward(sc, dx, moe.g as never, dg1, dg2, dy, x, rs.g1, rs.g2, moe.p as never, s, dims);
        } else {
          const s = monetVdForward(sc, y, x, rs.g1, rs.g2, moe.p as never, dims);
          monetVdBackward(sc, dx, moe.g as never, dg1, dg2, dy, x, rs.g1, rs.g2, moe.p as never, s, dims);
        }
        monetAuxBackward(sc, dg1, dg2, rs, H, E, T, 1e-10, 1e-3, 1e-3);
        monetRouterBackward(sc, dx, r.g as never, dg1, dg2, x, r.p as never, rs, rc, T);
      },
    };
  }
  return steps;
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
  const base = dev.kernels as unknown as Record<string, (...a: unknown[]) => void>;
  const timed = Object.fromEntries(KERNELS.map((name) => [name, (...a: unknown[]) => {
    if (MATMULS.includes(name)) recorded.push([name, a]);
    const t0 = cpuMs();
    base[name](...a);
    time.set(name, (time.get(name) ?? 0) + cpuMs() - t0);
  }])) as unknown as Kernels;
  const tdev: Device = {
    name: dev.name, kernels: timed, alloc: dev.alloc.bind(dev) as Device['alloc'], upload: dev.upload.bind(dev) as Device['upload'],
    read: dev.read.bind(dev) as Device['read'], free: dev.free.bind(dev), dispose: () => {},
  };
  const sc = new Scope(tdev);
  const t0 = cpuMs();
  step(sc);
  const layerMs = cpuMs() - t0;
  let replayMs = Infinity;
  for (let r = 0; r < replays; r++) {
    const t1 = cpuMs();
    for (const [name, a] of recorded) base[name](...a);
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
  const steps = layerSteps(dev);
  const rows: { name: string; desc: string; ms: number; cpuMs?: number }[] = [];
  const part1 = !args.includes('--no-benny') && !args.includes('--monet-only');
  if (part1) await b.suite(
    `layers forward+backward on ${dev.name}, T=${T}, d=${d}`,
    ...Object.entries(steps).map(([name, { step }]) => b.add(name, () => {
      const sc = new Scope(dev);
      step(sc);
      sc.release();
    }, { minSamples: 5 })),
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
  console.log(`\nCPU: ${cpus()[0]?.model ?? 'unknown'} (load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}); Node ${process.version}; ${dev.name}; one thread; T=${T} tokens, d=${d}\n`);
  if (part1) console.log('| layer (forward + backward) | size | ms / step (benny mean) | tokens/s | CPU ms / step (best of 4) | tokens/s (CPU time) |\n|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.desc} | ${r.ms.toFixed(1)} | ${Math.round((T / r.ms) * 1000)} | ${r.cpuMs!.toFixed(1)} | ${Math.round((T / r.cpuMs!) * 1000)} |`);
  }
  console.log('\n| layer (CPU time) | layer ms | in matmul kernels | matmuls replayed alone | replay / layer | largest kernels (ms) |\n|---|---|---|---|---|---|');
  const names = args.includes('--monet-only') ? ['monet-hd', 'monet-vd'] : Object.keys(steps);
  for (const name of names) {
    // best of three instrumented runs (the machine may be shared)
    let best: ReturnType<typeof breakdown> | null = null;
    for (let i = 0; i < 3; i++) {
      const r = breakdown(dev, steps[name].step);
      if (!best || r.layerMs < best.layerMs) best = r;
    }
    const r = best!;
    console.log(`| ${name} | ${r.layerMs.toFixed(1)} | ${r.matmulMs.toFixed(1)} ms (${((100 * r.matmulMs) / r.layerMs).toFixed(0)} %) | ${r.replayMs.toFixed(1)} ms (${r.calls} calls) | ${((100 * r.replayMs) / r.layerMs).toFixed(0)} % | ${r.top.map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')} |`);
  }
}
