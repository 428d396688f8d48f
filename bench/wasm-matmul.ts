// Matmul C = A·B (float32, square n×n×n, one thread) on our WASM kernels against plain JavaScript and
// tfjs-backend-wasm (XNNPACK, threads off), measured in the same run with benny (suites run one after another).
//
//   node --import tsx bench/wasm-matmul.ts [--sizes 512,1024] [--no-js]
//
// Rows: ours (plain WebAssembly SIMD build), ours (relaxed-SIMD build, when V8 validates it; Node 20 needs
// --experimental-wasm-relaxed-simd, which this script switches on), plain JS (a straightforward i-k-j loop over
// Float32Array), tfjs-backend-wasm. Prints GFLOP/s (2n³ flops per product) and the ratios to tfjs. Not a test:
// timings depend on the machine and on what else runs on it. Targets (issue 5): ≥ 45 GFLOP/s at 512³, ≥ 40 at
// 1024³, ≥ 1.2× tfjs-backend-wasm.

import b from 'benny';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { Device } from '../src/backend/device.ts';
import type { F32 } from '../src/backend/kernels.ts';
import { createWasmDeviceFromBytes } from '../src/backend/wasm/device.ts';
import { enableRelaxedSimd, readWasmBytes } from '../src/backend/wasm/node.ts';

const args = process.argv.slice(2);
const sizeArg = args.indexOf('--sizes');
const SIZES = sizeArg >= 0 ? args[sizeArg + 1].split(',').map(Number) : [512, 1024];
const withJs = !args.includes('--no-js');

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/** The plain-JS baseline: i-k-j order so the inner loop streams rows of B and C. */
function jsMatmul(c: Float32Array, a: Float32Array, bm: Float32Array, n: number): void {
  c.fill(0);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let p = 0; p < n; p++) {
      const aip = a[i * n + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += aip * bm[bp + j];
    }
  }
}

/**
 * Round-robin timing: each round runs every implementation once, in turn; the fastest run of each is kept, by wall
 * time and by this process's CPU time. On a machine shared with other work, load comes and goes between benny's
 * case-by-case suites, which can bias a ratio either way; interleaving exposes every implementation to the same
 * conditions, and CPU time (process.cpuUsage) leaves out the slices the process was not running — every
 * implementation here is single-threaded, so CPU time is its compute time.
 */
export function interleavedBest(
  impls: [string, () => void][],
  rounds: number,
): Map<string, { wallMs: number; cpuMs: number }> {
  const best = new Map<string, { wallMs: number; cpuMs: number }>();
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of impls) {
      const u0 = process.cpuUsage();
      const t0 = performance.now();
      fn();
      const wallMs = performance.now() - t0;
      const u = process.cpuUsage(u0);
      const cpuMs = (u.user + u.system) / 1000;
      const prev = best.get(name) ?? { wallMs: Infinity, cpuMs: Infinity };
      best.set(name, { wallMs: Math.min(prev.wallMs, wallMs), cpuMs: Math.min(prev.cpuMs, cpuMs) });
    }
  }
  return best;
}

export interface MatmulRow {
  n: number;
  name: string;
  gflops: number; // from the mean time per product
  best: number; // from the fastest sample (less sensitive to other processes on a shared machine)
  interleaved?: number; // from the fastest of the round-robin runs, wall time (see interleavedBest)
  cpu?: number; // from the fastest of the round-robin runs, process CPU time
  samples: number;
}

export async function runMatmulBench(sizes = SIZES, js = withJs): Promise<MatmulRow[]> {
  enableRelaxedSimd();
  const bytes = readWasmBytes();
  const devs: [string, Device][] = [
    ['ours: wasm simd', await createWasmDeviceFromBytes(bytes, { preferRelaxed: false })],
  ];
  if (bytes.relaxed && WebAssembly.validate(bytes.relaxed))
    devs.push(['ours: wasm relaxed-simd', await createWasmDeviceFromBytes(bytes, { preferRelaxed: true })]);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setThreadsCount(1);
  await tf.setBackend('wasm');
  await tf.ready();

  const rows: MatmulRow[] = [];
  for (const n of sizes) {
    const A = rand(n * n, 1),
      B = rand(n * n, 2);
    const flops = 2 * n * n * n;
    const cases = [];
    const impls: [string, () => void][] = [];
    for (const [name, dev] of devs) {
      const a = dev.upload(A),
        bb = dev.upload(B),
        c = dev.alloc('f32', n * n) as F32;
      const s = { M: n, N: n, K: n, transA: false, transB: false, accumulate: false };
      dev.kernels.matmul(c, a, bb, s); // warm-up (and JIT tier-up)
      cases.push(b.add(name, () => dev.kernels.matmul(c, a, bb, s), { minSamples: 8 }));
      impls.push([name, () => dev.kernels.matmul(c, a, bb, s)]);
    }
    const ta = tf.tensor2d(A, [n, n]),
      tb = tf.tensor2d(B, [n, n]);
    tf.matMul(ta, tb).dispose();
    cases.push(b.add('tfjs-backend-wasm (1 thread)', () => tf.matMul(ta, tb).dispose(), { minSamples: 8 }));
    impls.push(['tfjs-backend-wasm (1 thread)', () => tf.matMul(ta, tb).dispose()]);
    if (js) {
      const C = new Float32Array(n * n);
      // a 1024³ JS product takes over a second: few samples
      cases.push(b.add('plain JS', () => jsMatmul(C, A, B, n), { minSamples: 2, maxTime: n >= 1024 ? 1 : 3 }));
      impls.push(['plain JS', () => jsMatmul(C, A, B, n)]);
    }
    await b.suite(
      `matmul ${n}x${n}x${n}`,
      ...cases,
      b.cycle(),
      b.complete((summary) => {
        // details.mean (seconds per run) rather than ops, which benny rounds to an integer
        for (const r of summary.results) {
          rows.push({
            n,
            name: r.name,
            gflops: flops / r.details.mean / 1e9,
            best: flops / r.details.min / 1e9,
            samples: r.samples,
          });
        }
      }),
    );
    const best = interleavedBest(impls, n >= 1024 ? 6 : 12);
    for (const r of rows) {
      const t = best.get(r.name);
      if (r.n !== n || !t) continue;
      r.interleaved = flops / (t.wallMs / 1000) / 1e9;
      r.cpu = flops / (t.cpuMs / 1000) / 1e9;
    }
    ta.dispose();
    tb.dispose();
  }
  return rows;
}

export function matmulTable(rows: MatmulRow[]): string {
  const out = [
    '| n | implementation | GFLOP/s (benny mean) | GFLOP/s (benny best sample) | × tfjs (benny mean) | GFLOP/s ' +
      '(interleaved best) | × tfjs (interleaved best) | GFLOP/s (CPU time) | × tfjs (CPU time) | × plain JS (CPU ' +
      'time) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const n of [...new Set(rows.map((r) => r.n))]) {
    const at = rows.filter((r) => r.n === n);
    const tfjs = at.find((r) => r.name.startsWith('tfjs'))?.gflops;
    const js = at.find((r) => r.name === 'plain JS')?.cpu;
    const tfjsI = at.find((r) => r.name.startsWith('tfjs'))?.interleaved;
    const tfjsC = at.find((r) => r.name.startsWith('tfjs'))?.cpu;
    for (const r of at) {
      const inter = r.interleaved
        ? `${r.interleaved.toFixed(1)} | ${tfjsI ? (r.interleaved / tfjsI).toFixed(2) : '–'}`
        : '– | –';
      const cpu = r.cpu ? `${r.cpu.toFixed(1)} | ${tfjsC ? (r.cpu / tfjsC).toFixed(2) : '–'}` : '– | –';
      out.push(
        `| ${n}³ | ${r.name} | ${r.gflops.toFixed(1)} | ${r.best.toFixed(1)} | ` +
          `${tfjs ? (r.gflops / tfjs).toFixed(2) : '–'} | ${inter} | ${cpu} | ` +
          `${js && r.cpu ? (r.cpu / js).toFixed(1) : '–'} |`,
      );
    }
  }
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runMatmulBench();
  console.log(
    `\nCPU: ${cpus()[0]?.model ?? 'unknown'} (${cpus().length} logical CPUs, load average ${loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')}); Node ${process.version}; one thread\n`,
  );
  console.log(matmulTable(rows));
}
