// Matmul C = A·B, float32, square n×n×n (256³, 512³, 1024³), one thread, on every implementation side by side.
//
//   node --import tsx --import ./src/backend/webgpu/register-wgsl.mjs bench/matmul.ts [--quick]
//   (normally run through `npm run bench`, which writes the tables and files; see bench/run.ts)
//
// Rows and where they come from:
//   - ours: wasm simd / wasm relaxed-simd (the backend's packed f32x4 GEMM), tfjs-backend-wasm (XNNPACK, one
//     thread) and plain JS (an i-k-j loop): measured by bench/wasm-matmul.ts (the WASM backend's own benchmark,
//     reused here rather than duplicated), one benny suite per size;
//   - AssemblyScript scalar (asm/matmul_scalar.ts: the same i-k-j loop compiled to WebAssembly without SIMD),
//     WebGPU (our WGSL tiled matmul; on a machine without a GPU this is Mesa's software rasteriser: not a
//     performance figure), gpu.js in each mode it can run here (see `gpujsModes`): measured below, one benny suite
//     per size, each case checked on sampled entries against a float64 dot product before it is timed;
//   - PyTorch (native, its own process, same thread count): a reference row, not a peer in the same runtime.
// GFLOP/s = 2n³ / (median seconds per product).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { runMatmulBench } from './wasm-matmul.ts';
import { cpuBest, runSuite, serial, type CaseBudget, type Timing } from './lib/serial.ts';
import { NOT_PERF, SOFTWARE_ADAPTER } from './lib/devices.ts';
import { describeTorch, runTorch } from './lib/torch.ts';

export interface MatmulResult {
  n: number;
  impl: string;
  /** 'ours' (our backends), 'peer' (another JS/WASM library in this runtime), 'baseline' (plain loops), 'native'. */
  group: 'ours' | 'peer' | 'baseline' | 'native';
  gflops: number; // from the median seconds per product (bench/wasm-matmul.ts rows: the mean)
  gflopsBest: number; // from the fastest sample
  gflopsInterleaved?: number; // bench/wasm-matmul.ts rows: fastest of its round-robin runs (same conditions for all)
  gflopsCpu?: number; // from the best process CPU time of interleaved rounds (single-threaded rows only)
  msPerCall: number;
  samples: number;
  rme?: number; // relative margin of error, %
  note?: string;
}

export interface MatmulRun {
  results: MatmulResult[];
  webgpuAdapter?: string;
  gpujsModes: string[];
  torch?: string;
  notes: string[];
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

/**
 * Checks C = A·B on 64 sampled entries against a float64 dot product: |c − ref| ≤ 1e-4·(Σ|a·b| + 1), float32
 * rounding over K terms with room. Throws with the worst entry, so a wrong kernel is never timed.
 */
export function checkProduct(
  what: string,
  get: (i: number, j: number) => number,
  A: Float32Array,
  B: Float32Array,
  n: number,
): void {
  let s = 99;
  for (let t = 0; t < 64; t++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const i = s % n;
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % n;
    let ref = 0,
      mag = 0;
    for (let p = 0; p < n; p++) {
      ref += A[i * n + p] * B[p * n + j];
      mag += Math.abs(A[i * n + p] * B[p * n + j]);
    }
    const got = get(i, j);
    if (!(Math.abs(got - ref) <= 1e-4 * (mag + 1))) {
      throw new Error(
        `${what} at ${n}³: C[${i},${j}] = ${got}, expected ${ref} (float64) ` +
          `within ${(1e-4 * (mag + 1)).toExponential(2)}`,
      );
    }
  }
}

/** The scalar AssemblyScript module: three matrices placed after its static data, memory grown to fit. */
async function scalarWasm(n: number, A: Float32Array, B: Float32Array) {
  const bytes = readFileSync(fileURLToPath(new URL('../asm/build/matmul-scalar.wasm', import.meta.url)));
  const { instance } = await WebAssembly.instantiate(bytes, {
    env: {
      abort() {
        throw new Error('matmul-scalar aborted');
      },
    },
  });
  const ex = instance.exports as {
    memory: WebAssembly.Memory;
    heapBase(): number;
    matmulScalar(c: number, a: number, b: number, M: number, N: number, K: number): void;
  };
  const bytesPer = 4 * n * n;
  const a = Math.ceil(ex.heapBase() / 64) * 64,
    b = a + bytesPer,
    c = b + bytesPer;
  const need = c + bytesPer - ex.memory.buffer.byteLength;
  if (need > 0) ex.memory.grow(Math.ceil(need / 65536));
  new Float32Array(ex.memory.buffer, a, n * n).set(A);
  new Float32Array(ex.memory.buffer, b, n * n).set(B);
  return {
    run: () => ex.matmulScalar(c, a, b, n, n, n),
    get: (i: number, j: number) => new Float32Array(ex.memory.buffer, c, n * n)[i * n + j],
  };
}

type GpuJsKernel = ((a: Float32Array, b: Float32Array) => Float32Array[]) & { destroy?: () => void };
interface GpuJsLike {
  mode: string;
  createKernel(fn: unknown, opts: unknown): GpuJsKernel;
  destroy(): unknown;
}

/** gpu.js as the npm package ships it (CommonJS). Its WebGL path needs the native `gl` build and an X server. */
function loadGpuJs(): { GPU: new (o?: { mode?: string }) => GpuJsLike } | null {
  try {
    return createRequire(import.meta.url)('gpu.js');
  } catch {
    return null;
  }
}

export async function runMatmul(opts: { sizes: number[]; quick: boolean; torchThreads: number }): Promise<MatmulRun> {
  const { sizes, quick } = opts;
  const results: MatmulResult[] = [];
  const notes: string[] = [];

  // 1. The WASM helper's suite: our SIMD builds, tfjs-backend-wasm, plain JS.
  const wasmRows = await runMatmulBench(sizes, true);
  for (const r of wasmRows) {
    const group = r.name.startsWith('ours') ? 'ours' : r.name.startsWith('tfjs') ? 'peer' : 'baseline';
    const impl = r.name.replace(/^ours: /, 'ours: ');
    results.push({
      n: r.n,
      impl,
      group,
      gflops: r.gflops,
      gflopsBest: r.best,
      gflopsInterleaved: r.interleaved,
      gflopsCpu: r.cpu,
      msPerCall: (2 * r.n ** 3) / r.gflops / 1e6,
      samples: r.samples,
      note: 'timed by bench/wasm-matmul.ts (mean)',
    });
  }

  // 2. Scalar WASM, WebGPU, gpu.js.
  let webgpu: { dev: import('../src/backend/webgpu/device.ts').WebGpuDevice; software: boolean } | null = null;
  try {
    const { createWebGpuDevice } = await import('../src/backend/webgpu/device.ts');
    const dev = await createWebGpuDevice();
    webgpu = { dev, software: SOFTWARE_ADAPTER.test(dev.gpu.description) };
  } catch (e) {
    notes.push(`WebGPU row absent: ${(e as Error).message.split('\n')[0]}`);
  }
  const gpujs = loadGpuJs();
  const gpujsModes: string[] = [];
  if (!gpujs) notes.push('gpu.js rows absent: the package does not load');

  const budget = (slow: boolean): CaseBudget =>
    quick ? { minSamples: 1, maxTime: 0.05 } : slow ? { minSamples: 2, maxTime: 1 } : { minSamples: 5, maxTime: 2 };
  for (const n of sizes) {
    const A = rand(n * n, 1),
      B = rand(n * n, 2);
    const cases: [string, () => unknown, CaseBudget][] = [];
    const cpuCases: [string, () => void][] = []; // single-threaded, synchronous: timed by CPU time as well
    const meta = new Map<string, Pick<MatmulResult, 'group' | 'note'>>();
    const cleanup: (() => void)[] = [];

    const sc = await scalarWasm(n, A, B);
    sc.run();
    checkProduct('AssemblyScript scalar', sc.get, A, B, n);
    cases.push(['AssemblyScript scalar (no SIMD)', sc.run, budget(n >= 1024)]);
    cpuCases.push(['AssemblyScript scalar (no SIMD)', sc.run]);
    meta.set('AssemblyScript scalar (no SIMD)', { group: 'ours' });

    if (webgpu) {
      const { dev } = webgpu;
      const a = dev.upload(A),
        b = dev.upload(B),
        c = dev.alloc('f32', n * n);
      const s = { M: n, N: n, K: n, transA: false, transB: false, accumulate: false };
      dev.kernels.matmul(c, a, b, s);
      const C = await dev.read(c);
      checkProduct('webgpu', (i, j) => C[i * n + j], A, B, n);
      const name = 'ours: webgpu (WGSL tiled)';
      cases.push([
        name,
        serial(async () => {
          dev.kernels.matmul(c, a, b, s);
          await dev.gpu.sync();
        }),
        budget(webgpu.software && n >= 1024),
      ]);
      meta.set(name, { group: 'ours', note: webgpu.software ? NOT_PERF : undefined });
      cleanup.push(() => {
        for (const t of [a, b, c]) dev.free(t);
      });
    }

    if (gpujs) {
      for (const mode of [undefined, 'cpu'] as const) {
        const gpu = new gpujs.GPU(mode ? { mode } : undefined);
        const ran = gpu.mode; // 'webasm' (its WebAssembly backend) when no GL context exists, else a GL mode
        if (mode === undefined && !gpujsModes.includes(`auto → ${ran}`)) gpujsModes.push(`auto → ${ran}`);
        if (mode === 'cpu' && !gpujsModes.includes('cpu')) gpujsModes.push('cpu');
        if (mode === undefined && ran === 'cpu') continue; // the auto mode fell back to cpu: one row is enough
        // gpu.js's matmul as its documentation writes it: one output cell per thread, dot product over n
        const k = gpu.createKernel(
          function (
            this: { thread: { x: number; y: number }; constants: { n: number } },
            a: Float32Array,
            b: Float32Array,
          ) {
            let sum = 0;
            for (let p = 0; p < this.constants.n; p++)
              sum += a[this.thread.y * this.constants.n + p] * b[p * this.constants.n + this.thread.x];
            return sum;
          },
          { output: [n, n], constants: { n }, precision: 'single' },
        );
        const C = k(A, B);
        checkProduct(`gpu.js (${ran})`, (i, j) => C[i][j], A, B, n);
        const name = `gpu.js (${mode ? 'mode cpu' : `auto mode → ${ran}`})`;
        cases.push([name, () => k(A, B), budget(n >= 512)]);
        cpuCases.push([name, () => void k(A, B)]);
        meta.set(name, {
          group: 'peer',
          note:
            ran === 'webasm'
              ? "gpu.js's WebAssembly backend, synchronous call (one thread)"
              : ran === 'cpu'
                ? 'gpu.js CPU fallback (JavaScript)'
                : undefined,
        });
        cleanup.push(() => gpu.destroy());
      }
    }

    const timed: Timing[] = await runSuite(`matmul ${n}³ (scalar wasm, webgpu, gpu.js)`, cases);
    const cpu = cpuBest(cpuCases, quick ? 1 : n >= 1024 ? 3 : 6);
    for (const t of timed) {
      const m = meta.get(t.name)!;
      const c = cpu.get(t.name);
      results.push({
        n,
        impl: t.name,
        group: m.group,
        gflops: (2 * n ** 3) / t.median / 1e9,
        gflopsBest: (2 * n ** 3) / t.min / 1e9,
        gflopsCpu: c ? (2 * n ** 3) / c / 1e6 : undefined,
        msPerCall: t.median * 1000,
        samples: t.samples,
        rme: t.rme,
        note: m.note,
      });
    }
    for (const f of cleanup) f();
  }
  webgpu?.dev.dispose();

  // 3. Native PyTorch, same thread count.
  let torch: string | undefined;
  const tr = runTorch({ threads: opts.torchThreads, matmul: sizes, seconds: quick ? 0.05 : 1 });
  if ('error' in tr) notes.push(`PyTorch row absent: ${tr.error}`);
  else {
    torch = describeTorch(tr);
    for (const r of tr.matmul) {
      results.push({
        n: r.n,
        impl: `PyTorch ${tr.torch} (native, ${tr.threads} thread, ${tr.blas.kind})`,
        group: 'native',
        gflops: (2 * r.n ** 3) / r.median_s / 1e9,
        gflopsBest: (2 * r.n ** 3) / r.min_s / 1e9,
        gflopsCpu: (2 * r.n ** 3) / r.cpu_s / 1e9,
        msPerCall: r.median_s * 1000,
        samples: r.samples,
        note: `native, own process, ${tr.blas.kind} (${tr.blas.library}); not a peer in the same runtime`,
      });
    }
  }
  results.sort((a, b) => a.n - b.n);
  return { results, webgpuAdapter: webgpu?.dev.name, gpujsModes, torch, notes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const r = await runMatmul({ sizes: quick ? [64] : [256, 512, 1024], quick, torchThreads: 1 });
  const { matmulTable } = await import('./report.ts');
  console.log(matmulTable(r.results));
  for (const n of r.notes) console.log(`note: ${n}`);
}
