// The WASM device: the AssemblyScript kernels of asm/ (built to asm/build/*.wasm) behind the Device interface, on
// one thread or on N threads over one shared memory.
//
// Free of Node-only APIs, so that it bundles for browsers (esbuild): it is given the module bytes (and, for threads,
// a way to start workers). In Node, src/backend/wasm/node.ts reads the bytes from asm/build/ and starts
// worker_threads; in a browser, fetch the .wasm files and call createWasmDeviceFromBytes.
//
// Memory: every tensor lives in the module's linear memory. This file owns everything above the module's
// __heap_base with a small allocator (64-byte aligned blocks, one free list per block size, memory.grow when
// full). Growing memory detaches old ArrayBuffer views, so views are always taken fresh from memory.buffer.
// Zeroing is lazy: `alloc` promises zeros, but a training step allocates hundreds of MB of activations that the
// next kernel overwrites anyway, so a new tensor is only marked `unzeroed`; the first kernel that uses it zeroes it
// first — unless that kernel overwrites all of it (OVERWRITES below) — and `read` returns zeros for it.
// Kernels run synchronously when called (nothing is queued), so `read` only copies.
// Kernels that need temporary space get a scratch block sized by this file (see `scratch` below), one per thread.
//
// Threads (src/backend/wasm/threads.ts): with N > 1 the module is the shared-memory build, instantiated on this
// thread and in N − 1 workers. A large kernel is split into parts, up to 4 per thread (rows, columns, tokens,
// heads: see makeKernels); small ones run on this thread alone. Every split divides the OUTPUTS of a kernel, and
// every output element is computed by the same operations in the same order whatever the split, so results do not
// depend on the number of threads (bit for bit; test/wasm-threads.test.ts checks it on every kernel and on training
// losses). Known gap: a long training on 2 threads is not bit-reproducible from run to run (docs/backends.md).

import type { HostMemoryDevice } from '../device.ts';
import {
  type ActKind,
  type DTensor,
  type DType,
  type F32,
  type I32,
  type KernelName,
  type Kernels,
  wrapKernels,
} from '../kernels.ts';
import {
  sharedMemorySupported,
  spawnBrowserWorker,
  ThreadPool,
  type SpawnWorker,
  type ThreadStats,
} from './threads.ts';

/** A WASM device tensor: a block of linear memory. */
export interface WasmTensor<D extends DType = DType> extends DTensor<D> {
  readonly ptr: number;
  readonly bytes: number; // allocated size (≥ 4·length, a multiple of 64)
  freed: boolean;
  /** Allocated and not zeroed yet (see lazy zeroing in the header). */
  unzeroed: boolean;
}

/** The module's exports (asm/index.ts). Pointers and sizes are numbers; booleans are 0/1. */
interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedSimd(): number;
  gemmScratchFloats(N: number): number;
  matmulBf16ScratchFloats(N: number, K: number): number;
  attentionScratchFloats(S: number, hd: number): number;
  ropeScratchFloats(S: number, hd: number): number;
  thresholdScratchWords(k: number, n: number): number;
  [kernel: string]: unknown;
}

/** The module's exported functions by name: the kernels, called with numbers (pointers, sizes, 0/1 flags). */
function exportedFunctions(ex: Exports): Record<string, (...args: number[]) => void> {
  const out: Record<string, (...args: number[]) => void> = {};
  for (const [name, f] of Object.entries(ex)) if (typeof f === 'function') out[name] = f as (...args: number[]) => void;
  return out;
}

const ACT: Record<ActKind, number> = { relu: 0, relu2: 1, gelu: 2, silu: 3 };
const ALIGN = 64;
/** Pages (64 KiB) the shared-memory builds declare as their minimum (scripts/build-asm.mjs: --initialMemory). */
const SHARED_INITIAL_PAGES = 16;
/** wasm32's limit: 4 GiB in 64 KiB pages; a shared memory must declare its maximum. */
const MAX_PAGES = 65536;

export interface WasmModuleBytes {
  /** The plain WebAssembly SIMD build (asm/build/kernels.wasm). */
  plain: Uint8Array | ArrayBuffer;
  /** The relaxed-SIMD build (asm/build/kernels-relaxed.wasm), used when this engine validates it. */
  relaxed?: Uint8Array | ArrayBuffer;
  /** The shared-memory builds for threads (asm/build/kernels-threads.wasm, kernels-threads-relaxed.wasm). */
  threads?: Uint8Array | ArrayBuffer;
  threadsRelaxed?: Uint8Array | ArrayBuffer;
}

export interface WasmDeviceOptions {
  /** Use the relaxed-SIMD build when the engine validates it (default true). */
  preferRelaxed?: boolean;
  /** Threads to run kernels on, this one included (default 1). */
  threads?: number;
  /** How to start a worker (default: Web Workers from a Blob URL; the Node loader passes worker_threads). */
  spawnWorker?: SpawnWorker;
  /** False where Atomics.wait is not allowed (a browser's main thread): the device then spins while it waits. */
  canBlock?: boolean;
  /** Split every kernel that can be split, however small (tests: exercises every split on small shapes). */
  splitEverything?: boolean;
}

/** A WASM device, with what it runs on. */
export interface WasmDevice extends HostMemoryDevice {
  /** Threads the kernels run on (this one included). */
  readonly threads: number;
  /** Why fewer threads run than were asked for (e.g. no SharedArrayBuffer on this page), or null. */
  readonly threadsNote: string | null;
  /** What the threads have done since the device started (cumulative; bench/step-breakdown.ts reports it). */
  threadStats(): ThreadStats;
}

class WasmDeviceImpl implements WasmDevice {
  readonly name: string;
  readonly kernels: Kernels;
  private readonly raw: Kernels; // the kernels without lazy zeroing
  private readonly mem: WebAssembly.Memory;
  private top: number; // first never-allocated byte
  private readonly freeLists = new Map<number, number[]>();
  private scratchPtr = 0;
  private scratchBytes = 0;
  private disposed = false;

  constructor(
    ex: Exports,
    relaxed: boolean,
    private readonly pool: ThreadPool,
    readonly threadsNote: string | null,
    splitEverything: boolean,
  ) {
    const build = relaxed ? 'relaxed-simd' : 'simd';
    this.name = `wasm (${build}, ${pool.threads} thread${pool.threads > 1 ? 's' : ''})`;
    this.mem = ex.memory;
    this.top = Math.ceil(ex.heapBase() / ALIGN) * ALIGN;
    this.raw = makeKernels(
      ex,
      pool,
      (bytes) => this.scratch(bytes),
      (bytes) => this.allocBytes(bytes),
      (ptr, bytes) => this.freeBytes(ptr, Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN)),
      splitEverything ? SPLIT_ALL : SPLIT_LARGE,
    );
    this.kernels = withLazyZero(this.raw, (t) => this.zero(t));
  }

  get threads(): number {
    return this.pool.threads;
  }

  threadStats(): ThreadStats {
    return this.pool.stats();
  }

  /** Raw block allocation (bytes rounded up to the alignment); its contents are whatever was there. */
  private allocBytes(bytes: number): number {
    if (this.disposed) throw new Error('wasm device: used after dispose()');
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    const list = this.freeLists.get(size);
    let ptr: number;
    if (list?.length) {
      ptr = list.pop()!;
    } else {
      ptr = this.top;
      const end = ptr + size;
      const have = this.mem.buffer.byteLength;
      if (end > have) {
        const pages = Math.ceil((end - have) / 65536);
        try {
          this.mem.grow(Math.max(pages, Math.ceil(have / 65536 / 4))); // grow by at least 25% to amortise
        } catch {
          try {
            this.mem.grow(pages);
          } catch (e) {
            // Out of address space: a freed block of another size can still hold it (a long prompt's temporaries
            // are freed in sizes the next steps never ask for again).
            const split = this.splitFree(size);
            if (split !== null) return split;
            throw new Error(
              `wasm device: cannot grow memory to ${end} bytes (${(e as Error).message}); ` +
                'a wasm32 module holds at most 4 GiB',
            );
          }
        }
      }
      this.top = end;
    }
    return ptr;
  }

  /**
   * Zeroes a block with the module's `fill` (SIMD stores; split between threads when large). Not a typed-array fill:
   * on a shared memory those take V8's slow element-by-element path.
   */
  private zero(t: WasmTensor): void {
    this.raw.fill(t, { n: t.bytes / 4, value: 0 });
  }

  /** The smallest free block larger than `size`: its front `size` bytes, the rest back on the free lists; or null. */
  private splitFree(size: number): number | null {
    let best = 0;
    for (const [s, list] of this.freeLists) if (s > size && list.length > 0 && (best === 0 || s < best)) best = s;
    if (best === 0) return null;
    const ptr = this.freeLists.get(best)!.pop()!;
    this.freeBytes(ptr + size, best - size);
    return ptr;
  }

  private freeBytes(ptr: number, bytes: number): void {
    let list = this.freeLists.get(bytes);
    if (!list) {
      list = [];
      this.freeLists.set(bytes, list);
    }
    list.push(ptr);
  }

  /** A scratch block of at least `bytes`, valid until the next kernel call (kernels run one at a time). */
  private scratch(bytes: number): number {
    if (bytes > this.scratchBytes) {
      if (this.scratchBytes) this.freeBytes(this.scratchPtr, this.scratchBytes);
      this.scratchBytes = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
      this.scratchPtr = this.allocBytes(this.scratchBytes);
    }
    return this.scratchPtr;
  }

  alloc(dtype: 'f32', length: number): F32;
  alloc(dtype: 'i32', length: number): I32;
  alloc(dtype: DType, length: number): DTensor;
  alloc(dtype: DType, length: number): DTensor {
    if (!Number.isInteger(length) || length < 0)
      throw new Error(`wasm device alloc: expected a non-negative integer length, found ${length}`);
    const bytes = Math.max(ALIGN, Math.ceil((4 * length) / ALIGN) * ALIGN);
    const t: WasmTensor = { dtype, length, ptr: this.allocBytes(bytes), bytes, freed: false, unzeroed: true };
    return t;
  }

  upload(data: Float32Array): F32;
  upload(data: Int32Array): I32;
  upload(data: Float32Array | Int32Array): DTensor {
    const t = this.alloc(data instanceof Float32Array ? 'f32' : 'i32', data.length) as WasmTensor;
    const view =
      data instanceof Float32Array
        ? new Float32Array(this.mem.buffer, t.ptr, data.length)
        : new Int32Array(this.mem.buffer, t.ptr, data.length);
    view.set(data);
    t.unzeroed = false;
    return t;
  }

  read(t: F32): Promise<Float32Array>;
  read(t: I32): Promise<Int32Array>;
  async read(t: DTensor): Promise<Float32Array | Int32Array> {
    return this.readSync(t as F32);
  }

  readSync(t: F32): Float32Array;
  readSync(t: I32): Int32Array;
  readSync(t: DTensor): Float32Array | Int32Array {
    const w = t as WasmTensor;
    if (w.freed) throw new Error('wasm device read: the tensor was freed');
    if (w.unzeroed) return w.dtype === 'f32' ? new Float32Array(w.length) : new Int32Array(w.length);
    return w.dtype === 'f32'
      ? new Float32Array(this.mem.buffer, w.ptr, w.length).slice()
      : new Int32Array(this.mem.buffer, w.ptr, w.length).slice();
  }

  writeSync(t: F32, data: Float32Array): void {
    const w = t as WasmTensor<'f32'>;
    if (w.freed) throw new Error('wasm device write: the tensor was freed');
    if (data.length !== w.length)
      throw new Error(`wasm device write: expected ${w.length} values for the tensor, found ${data.length}`);
    new Float32Array(this.mem.buffer, w.ptr, w.length).set(data);
    w.unzeroed = false;
  }

  writeRange(t: I32, data: Int32Array, at: number): void {
    const w = t as WasmTensor<'i32'>;
    if (w.freed) throw new Error('wasm device write: the tensor was freed');
    if (!(Number.isInteger(at) && at >= 0 && at + data.length <= w.length))
      throw new Error(`wasm device write: elements [${at}, ${at + data.length}) are outside the tensor's ${w.length}`);
    if (w.unzeroed) {
      this.zero(w);
      w.unzeroed = false;
    }
    new Int32Array(this.mem.buffer, w.ptr + 4 * at, data.length).set(data);
  }

  free(t: DTensor): void {
    const w = t as WasmTensor;
    if (w.freed) throw new Error('wasm device free: the tensor was already freed');
    w.freed = true;
    this.freeBytes(w.ptr, w.bytes);
  }

  dispose(): void {
    this.disposed = true;
    this.freeLists.clear();
    this.pool.dispose();
  }
}

/** Sizes struct of a kernel, as the lazy-zeroing table reads it. */
type Sizes = Record<string, number | boolean | string>;
const n = (v: unknown) => v as number;

/**
 * For lazy zeroing: the tensor arguments (by position) a kernel overwrites entirely, every element written with
 * "=" (so an unzeroed tensor there needs no zeroing first), given its sizes. A kernel not listed, and any other
 * argument, gets its unzeroed tensors zeroed before it runs. Each entry mirrors what its asm kernel stores.
 */
const OVERWRITES: Partial<Record<KernelName, (s: Sizes, len: (i: number) => number) => number[]>> = {
  fill: (s, len) => (n(s.n) >= len(0) ? [0] : []),
  copyBlock: (s, len) =>
    !s.accumulate && s.dstOffset === 0 && s.dstLd === s.cols && n(s.rows) * n(s.cols) >= len(0) ? [0] : [],
  axpby: (s, len) => (s.beta === 0 && n(s.n) >= len(0) ? [0] : []),
  matmul: (s, len) => (!s.accumulate && n(s.M) * n(s.N) >= len(0) ? [0] : []),
  matmulBf16: (s, len) => (!s.accumulate && n(s.M) * n(s.N) >= len(0) ? [0] : []),
  activation: (s, len) => (n(s.n) >= len(0) ? [0] : []),
  swiglu: (s, len) => (n(s.n) >= len(0) ? [0] : []),
  maskScale: (s, len) => (n(s.n) >= len(0) ? [0] : []),
  thresholdTopkMask: (s, len) => (n(s.rows) * n(s.n) >= len(0) ? [0] : []),
  softmaxRows: (s, len) => (n(s.rows) * n(s.n) >= len(0) ? [0] : []),
  topkRows: (s, len) => [0, 1].filter((i) => n(s.rows) * n(s.k) >= len(i)),
  rmsnorm: (s, len) => [n(s.rows) * n(s.d) >= len(0) ? 0 : -1, n(s.rows) >= len(1) ? 1 : -1],
  groupStats: (s, len) => [0, 1].filter((i) => n(s.groups) >= len(i)),
  batchnorm: (s, len) => (n(s.rows) * n(s.cols) >= len(0) ? [0] : []),
  monetRoute: (s, len) => [0, 1].filter((i) => n(s.T) * n(s.H) * n(s.E) >= len(i)),
  headSum: (s, len) => (n(s.T) * n(s.E) >= len(0) ? [0] : []),
  monetHdMix: (s, len) => [n(s.T) * n(s.E) * n(s.m) >= len(0) ? 0 : -1, n(s.T) * n(s.H) * n(s.m) >= len(1) ? 1 : -1],
  monetVdMix: (s, len) =>
    [0, 1, 2, 3, 4, 5].filter((i) => (i < 4 ? n(s.T) * n(s.E) * n(s.m) : n(s.T) * n(s.H) * n(s.m)) >= len(i)),
  peerRoute: (s, len) => [0, 1].filter((i) => n(s.T) * n(s.H) * n(s.k) >= len(i)),
  peerExperts: (s, len) => (n(s.T) * n(s.H) * n(s.k) >= len(1) ? [1] : []), // y (argument 0) accumulates
  moeSort: (s, len) => [n(s.P) >= len(0) ? 0 : -1, n(s.P) >= len(1) ? 1 : -1, n(s.E) + 1 >= len(2) ? 2 : -1],
  moeDispatch: (s, len) => (n(s.P) * n(s.d) >= len(0) ? [0] : []),
  smoeAux: (s, len) => [n(s.T) * n(s.E) >= len(2) ? 2 : -1, n(s.T) >= len(3) ? 3 : -1], // the losses accumulate
  gatherRows: (s, len) => (n(s.rows) * n(s.cols) >= len(0) ? [0] : []),
  widenBf16: (s, len) => (n(s.n) >= len(0) ? [0] : []),
  gatherRowsBf16: (s, len) => (n(s.rows) * n(s.cols) >= len(0) ? [0] : []),
  rope: (s, len) => (n(s.B) * n(s.S) * n(s.heads) * n(s.hd) >= len(0) ? [0] : []),
  attention: (s, len) => [
    n(s.B) * n(s.S) * n(s.nH) * n(s.hd) >= len(0) ? 0 : -1,
    n(s.B) * n(s.nH) * n(s.S) * n(s.S) >= len(1) ? 1 : -1,
  ],
  crossEntropy: (s, len) => (n(s.B) * n(s.S) * n(s.V) >= len(1) ? [1] : []), // the loss accumulates
};

/**
 * The kernels with lazy zeroing in front: before a kernel runs, each unzeroed tensor argument is zeroed, unless
 * every place it appears is one the kernel overwrites entirely (then it is only marked as zeroed).
 */
function withLazyZero(k: Kernels, zero: (t: WasmTensor) => void): Kernels {
  return wrapKernels(k, (name, inner) => {
    const full = OVERWRITES[name];
    return (...a: unknown[]) => {
      const s = a[a.length - 1] as Sizes;
      let keep: number[] | null = null;
      for (let i = 0; i < a.length - 1; i++) {
        const t = a[i] as WasmTensor;
        if (!t.unzeroed) continue;
        keep ??= full ? full(s, (j) => (a[j] as WasmTensor).length) : [];
        if (!keep.includes(i)) {
          zero(t);
          t.unzeroed = false;
        }
      }
      if (keep) for (const i of keep) if (i >= 0) (a[i] as WasmTensor).unzeroed = false;
      inner(...a);
    };
  });
}

/**
 * Below these sizes a kernel runs on one thread: a job costs a few microseconds to publish and wait for (more when
 * a worker has gone to sleep), so each thread's part should be worth tens of microseconds.
 */
const SPLIT_LARGE = {
  elements: 32768, // elementwise and row kernels: elements per thread
  macs: 1 << 20, // matrix products: multiply-adds per thread
  gemmChunkLines: 256, // lines (rows or columns of C) a product's part keeps when there are more parts than threads
};
/** For tests: split whatever can be split. */
const SPLIT_ALL = { elements: 1, macs: 1, gemmChunkLines: 1 };

/** A job's scratch: thread 0's block and the distance between two threads' blocks (bytes). */
interface Scratch {
  at: number;
  stride: number;
}

/**
 * Bind the exports to the Kernels contract: struct arguments → positional, booleans → 0/1, activations → numbers,
 * and the split of each large kernel between threads. A split gives each thread a contiguous range of an output
 * dimension — by pointer offsets (`at`) where the kernel's rows are independent, or through the kernel's own range
 * arguments (`lo, hi`: attention pairs, the columns of a column sum or of a grouped product).
 */
function makeKernels(
  ex: Exports,
  pool: ThreadPool,
  scratch: (bytes: number) => number,
  keep: (bytes: number) => number,
  release: (ptr: number, bytes: number) => void,
  min: typeof SPLIT_LARGE,
): Kernels {
  const MIN_ELEMENTS = min.elements;
  const MIN_MACS = min.macs;
  const GEMM_CHUNK_LINES = min.gemmChunkLines;
  const k = exportedFunctions(ex);
  const p = (t: DTensor): number => {
    const w = t as WasmTensor;
    if (w.freed) throw new Error('wasm kernel: a tensor argument was freed');
    return w.ptr;
  };
  /** Byte address of element i of tensor t. */
  const at = (t: DTensor, i: number): number => p(t) + 4 * i;
  const b = (v: boolean) => (v ? 1 : 0);
  const F = Object.fromEntries(pool.names.map((n, i) => [n, i])) as Record<string, number>;
  const call = pool.call.bind(pool);
  /**
   * Scratch for one job: a block of `bytes` per thread. Its calls pass `at` (thread 0's block) as their last
   * argument, and the split hands `stride` to the pool, which moves each thread to its own block.
   */
  const scratchPer = (bytes: number): Scratch => {
    const stride = Math.ceil(bytes / ALIGN) * ALIGN;
    return { at: scratch(stride * pool.threads), stride };
  };
  /**
   * Splits [0, n) into parts of at least `min` items, boundaries on multiples of `align`, runs body(part, lo, hi)
   * for each part and then the job. Work for every thread: up to CHUNKS parts per thread, each of at least
   * `chunkMin` items (and `min`), so that a thread that starts late finds parts left; less: one part per `min`.
   * A job whose calls take scratch gives its `sc`.
   */
  const split = (
    n: number,
    min: number,
    align: number,
    body: (t: number, lo: number, hi: number) => void,
    sc?: Scratch,
    chunkMin = min,
  ): void => {
    const T = pool.threads;
    const most = Math.floor(n / Math.max(1, min));
    const chunk = Math.max(1, min, chunkMin);
    const perThread = Math.max(1, Math.min(pool.maxParts / T, Math.floor(n / (T * chunk))));
    const parts = most >= T ? T * perThread : Math.max(1, most);
    pool.begin(parts, sc ? sc.stride : 0);
    for (let c = 0; c < parts; c++) {
      const lo = c === 0 ? 0 : Math.floor((n * c) / parts / align) * align;
      const hi = c === parts - 1 ? n : Math.floor((n * (c + 1)) / parts / align) * align;
      if (hi > lo) body(c, lo, hi);
    }
    pool.end();
  };
  const ropeTables = new Map<string, { at: number; S: number }>();
  /** The rope table (asm ropeTable) for at least S positions of head size hd, kept for the device's lifetime. */
  const ropeTable = (S: number, hd: number, theta: number): { at: number; S: number } => {
    const key = `${hd},${theta}`;
    const hit = ropeTables.get(key);
    if (hit && hit.S >= S) return hit;
    // grown at least twofold, so that a sequence growing a token at a time remakes it only log(S) times
    const rows = hit ? Math.max(S, 2 * hit.S) : S;
    if (hit) release(hit.at, 4 * ex.ropeScratchFloats(hit.S, hd));
    const tab = { at: keep(4 * ex.ropeScratchFloats(rows, hd)), S: rows };
    k.ropeTable(tab.at, rows, hd, theta);
    ropeTables.set(key, tab);
    return tab;
  };
  /** Rows of `width` elements: at least MIN_ELEMENTS per part. */
  const rowsOf = (rows: number, width: number, body: (t: number, lo: number, hi: number) => void, sc?: Scratch) =>
    split(rows, Math.ceil(MIN_ELEMENTS / Math.max(1, width)), 1, body, sc);
  /** Flat elementwise range, boundaries on 16 elements (a cache line; keeps the SIMD/tail split of the kernel). */
  const flat = (n: number, body: (t: number, lo: number, hi: number) => void, min = MIN_ELEMENTS) =>
    split(n, min, 16, body);

  /**
   * C[i, j] (=, or +=) Σ_p A(i, p)·B(p, j), A(i, p) at a + 4·(i·rsA + p·csA), B(p, j) at b + 4·(p·rsB + j·csB):
   * split by rows of C when M ≥ N, by columns otherwise (every element's sum runs over p in the same order).
   */
  const gemm = (
    M: number,
    N: number,
    K: number,
    a: number,
    rsA: number,
    csA: number,
    bb: number,
    rsB: number,
    csB: number,
    c: number,
    ldc: number,
    acc: boolean,
  ): void => {
    const sc = scratchPer(4 * ex.gemmScratchFloats(N));
    const byRows = M >= N;
    const perLine = (byRows ? N : M) * Math.max(1, K);
    const min = Math.ceil(MIN_MACS / perLine);
    // Each part packs all of the other operand: more parts than threads only where each keeps gemmChunkLines
    // lines (a deep product, K = tokens in a weight gradient, has few lines and a large operand to pack).
    const body = byRows
      ? (t: number, lo: number, hi: number) =>
          call(t, F.gemm, hi - lo, N, K, a + 4 * lo * rsA, rsA, csA, bb, rsB, csB, c + 4 * lo * ldc, ldc, b(acc), sc.at)
      : (t: number, lo: number, hi: number) =>
          call(t, F.gemm, M, hi - lo, K, a, rsA, csA, bb + 4 * lo * csB, rsB, csB, c + 4 * lo, ldc, b(acc), sc.at);
    split(byRows ? M : N, min, 16, body, sc, GEMM_CHUNK_LINES);
  };

  return {
    fill: (x, s) =>
      flat(s.n, (t, lo, hi) => call(t, x.dtype === 'i32' ? F.fillI32 : F.fill, at(x, lo), hi - lo, s.value)),
    copyBlock: (dst, src, s) =>
      s.rows === 1
        ? flat(s.cols, (t, lo, hi) =>
            call(
              t,
              F.copyBlock,
              p(dst),
              p(src),
              1,
              hi - lo,
              s.dstLd,
              s.srcLd,
              s.dstOffset + lo,
              s.srcOffset + lo,
              b(s.accumulate),
            ),
          )
        : rowsOf(s.rows, s.cols, (t, lo, hi) =>
            call(
              t,
              F.copyBlock,
              p(dst),
              p(src),
              hi - lo,
              s.cols,
              s.dstLd,
              s.srcLd,
              s.dstOffset + lo * s.dstLd,
              s.srcOffset + lo * s.srcLd,
              b(s.accumulate),
            ),
          ),
    axpby: (y, x, s) => flat(s.n, (t, lo, hi) => call(t, F.axpby, at(y, lo), at(x, lo), hi - lo, s.alpha, s.beta)),
    addBias: (y, bias, s) =>
      rowsOf(s.rows, s.cols, (t, lo, hi) => call(t, F.addBias, at(y, lo * s.cols), p(bias), hi - lo, s.cols)),
    // one part per thread: a part reads every row, a few cache lines of each, so more parts read x more often
    colSum: (out, x, s) =>
      split(
        s.cols,
        Math.ceil(MIN_ELEMENTS / Math.max(1, s.rows)),
        16,
        (t, lo, hi) => call(t, F.colSum, p(out), p(x), s.rows, s.cols, lo, hi),
        undefined,
        s.cols,
      ),
    sumSquares: (out, x, s) => k.sumSquares(p(out), p(x), s.n, b(s.accumulate)),
    matmul: (c, a, bb, s) =>
      gemm(
        s.M,
        s.N,
        s.K,
        p(a),
        s.transA ? 1 : s.K,
        s.transA ? s.M : 1,
        p(bb),
        s.transB ? 1 : s.N,
        s.transB ? s.K : 1,
        p(c),
        s.N,
        s.accumulate,
      ),
    // B bfloat16 (N, K): row n at byte 2·n·K. One token: gemvBf16 on rows of B; more: gemmBf16, split as gemm.
    matmulBf16: (c, a, bb, s) => {
      const sc = scratchPer(4 * ex.matmulBf16ScratchFloats(s.N, s.K));
      const acc = b(s.accumulate);
      if (s.M === 1)
        split(
          s.N,
          Math.ceil(MIN_MACS / Math.max(1, s.K)),
          16,
          (t, lo, hi) => call(t, F.gemvBf16, at(c, lo), p(a), p(bb) + 2 * lo * s.K, hi - lo, s.K, acc, sc.at),
          sc,
        );
      else if (s.M >= s.N)
        split(
          s.M,
          Math.ceil(MIN_MACS / (s.N * Math.max(1, s.K))),
          16,
          (t, lo, hi) =>
            call(t, F.gemmBf16, hi - lo, s.N, s.K, at(a, lo * s.K), p(bb), at(c, lo * s.N), s.N, acc, sc.at),
          sc,
          GEMM_CHUNK_LINES,
        );
      else
        split(
          s.N,
          Math.ceil(MIN_MACS / (s.M * Math.max(1, s.K))),
          16,
          (t, lo, hi) => call(t, F.gemmBf16, s.M, hi - lo, s.K, p(a), p(bb) + 2 * lo * s.K, at(c, lo), s.N, acc, sc.at),
          sc,
          GEMM_CHUNK_LINES,
        );
    },
    matmulGrouped: (c, a, bb, off, s) => {
      const sc = scratchPer(4 * ex.gemmScratchFloats(s.N));
      split(
        s.N,
        Math.ceil(MIN_MACS / Math.max(1, s.P * s.K)),
        16,
        (t, lo, hi) =>
          call(
            t,
            F.matmulGrouped,
            p(c),
            p(a),
            p(bb),
            p(off),
            s.P,
            s.N,
            s.K,
            s.G,
            b(s.transB),
            b(s.accumulate),
            lo,
            hi,
            sc.at,
          ),
        sc,
        GEMM_CHUNK_LINES, // each part packs every group's rows of A
      );
    },
    matmulGroupedTN: (db, dc, a, off, s) => {
      const sc = scratchPer(4 * ex.gemmScratchFloats(s.K));
      split(
        s.N,
        Math.ceil(MIN_MACS / Math.max(1, s.P * s.K)),
        16,
        (t, lo, hi) => call(t, F.matmulGroupedTN, p(db), p(dc), p(a), p(off), s.P, s.N, s.K, s.G, lo, hi, sc.at),
        sc,
        GEMM_CHUNK_LINES,
      );
    },
    activation: (y, x, s) =>
      flat(s.n, (t, lo, hi) => call(t, F.activation, at(y, lo), at(x, lo), hi - lo, ACT[s.kind])),
    activationBackward: (dx, dy, x, s) =>
      flat(s.n, (t, lo, hi) => call(t, F.activationBackward, at(dx, lo), at(dy, lo), at(x, lo), hi - lo, ACT[s.kind])),
    swiglu: (h, g, u, s) => flat(s.n, (t, lo, hi) => call(t, F.swiglu, at(h, lo), at(g, lo), at(u, lo), hi - lo)),
    swigluBackward: (dg, du, dh, g, u, s) =>
      flat(s.n, (t, lo, hi) =>
        call(t, F.swigluBackward, at(dg, lo), at(du, lo), at(dh, lo), at(g, lo), at(u, lo), hi - lo),
      ),
    thresholdTopkMask: (mask, x, s) => {
      const sc = scratchPer(4 * ex.thresholdScratchWords(s.k, s.n));
      rowsOf(
        s.rows,
        s.n,
        (t, lo, hi) => call(t, F.thresholdTopkMask, at(mask, lo * s.n), at(x, lo * s.n), hi - lo, s.n, s.k, sc.at),
        sc,
      );
    },
    maskScale: (y, x, mask, s) =>
      flat(s.n, (t, lo, hi) => call(t, F.maskScale, at(y, lo), at(x, lo), at(mask, lo), hi - lo, s.alpha)),
    softmaxRows: (y, x, s) =>
      rowsOf(s.rows, s.n, (t, lo, hi) => call(t, F.softmaxRows, at(y, lo * s.n), at(x, lo * s.n), hi - lo, s.n)),
    softmaxBackward: (dx, y, dy, s) =>
      rowsOf(s.rows, s.n, (t, lo, hi) =>
        call(t, F.softmaxBackward, at(dx, lo * s.n), at(y, lo * s.n), at(dy, lo * s.n), hi - lo, s.n),
      ),
    topkRows: (idx, val, x, s) => {
      const sc = scratchPer(8 * s.k);
      rowsOf(
        s.rows,
        s.n,
        (t, lo, hi) =>
          call(t, F.topkRows, at(idx, lo * s.k), at(val, lo * s.k), at(x, lo * s.n), hi - lo, s.n, s.k, sc.at),
        sc,
      );
    },
    topkRowsBackward: (dx, dval, idx, s) =>
      rowsOf(s.rows, s.n, (t, lo, hi) =>
        call(t, F.topkRowsBackward, at(dx, lo * s.n), at(dval, lo * s.k), at(idx, lo * s.k), hi - lo, s.n, s.k),
      ),
    rmsnorm: (y, rstd, x, w, s) =>
      rowsOf(s.rows, s.d, (t, lo, hi) =>
        call(t, F.rmsnorm, at(y, lo * s.d), at(rstd, lo), at(x, lo * s.d), p(w), hi - lo, s.d, s.eps),
      ),
    rmsnormBackward: (dx, dw, dy, x, w, rstd, s) => {
      // dx by rows and dw by columns, in one job: thread t takes part t of each
      const rowParts = Math.max(1, Math.min(pool.threads, Math.floor((s.rows * s.d) / MIN_ELEMENTS)));
      pool.begin(rowParts);
      for (let c = 0; c < rowParts; c++) {
        const r0 = Math.floor((s.rows * c) / rowParts),
          r1 = Math.floor((s.rows * (c + 1)) / rowParts);
        const c0 = Math.floor((s.d * c) / rowParts / 4) * 4;
        const c1 = c === rowParts - 1 ? s.d : Math.floor((s.d * (c + 1)) / rowParts / 4) * 4;
        call(
          c,
          F.rmsnormBackwardRows,
          at(dx, r0 * s.d),
          at(dy, r0 * s.d),
          at(x, r0 * s.d),
          p(w),
          at(rstd, r0),
          r1 - r0,
          s.d,
        );
        if (c1 > c0) call(c, F.rmsnormBackwardWeight, p(dw), p(dy), p(x), p(rstd), s.rows, s.d, c0, c1);
      }
      pool.end();
    },
    groupStats: (mean, v, x, s) =>
      split(s.groups, Math.ceil(MIN_ELEMENTS / Math.max(1, s.outer * s.inner)), 1, (t, lo, hi) =>
        call(t, F.groupStats, p(mean), p(v), p(x), s.outer, s.groups, s.inner, lo, hi),
      ),
    batchnorm: (y, x, mean, v, g, be, s) => k.batchnorm(p(y), p(x), p(mean), p(v), p(g), p(be), s.rows, s.cols, s.eps),
    batchnormBackward: (dx, dg, dbe, dy, x, mean, v, g, s) =>
      k.batchnormBackward(p(dx), p(dg), p(dbe), p(dy), p(x), p(mean), p(v), p(g), s.rows, s.cols, s.eps, b(s.train)),
    runningStatsUpdate: (rm, rv, mean, v, s) =>
      k.runningStatsUpdate(p(rm), p(rv), p(mean), p(v), s.groups, s.count, s.momentum),
    monetRoute: (g, mask, z, mean, v, s) => {
      const HE = s.H * s.E;
      rowsOf(s.T, HE, (t, lo, hi) =>
        call(
          t,
          F.monetRoute,
          at(g, lo * HE),
          at(mask, lo * HE),
          at(z, lo * HE),
          p(mean),
          p(v),
          hi - lo,
          s.H,
          s.E,
          s.sigma,
          s.eps,
        ),
      );
    },
    monetUnifLoss: (loss, g, s) =>
      k.monetUnifLoss(p(loss), p(g), s.T, s.H, s.E, s.eps, s.scale, scratch(4 * s.H * s.E)),
    monetUnifBackward: (dg, g, s) =>
      k.monetUnifBackward(p(dg), p(g), s.T, s.H, s.E, s.eps, s.scale, scratch(4 * s.H * s.E)),
    monetAmbLoss: (loss, g, s) => k.monetAmbLoss(p(loss), p(g), s.T, s.H, s.E, s.scale),
    monetAmbBackward: (dg, g, s) =>
      rowsOf(s.T, s.H * s.E, (t, lo, hi) => call(t, F.monetAmbBackward, p(dg), p(g), s.T, s.H, s.E, s.scale, lo, hi)),
    headSum: (G, g, s) =>
      rowsOf(s.T, s.H * s.E, (t, lo, hi) =>
        call(t, F.headSum, at(G, lo * s.E), at(g, lo * s.H * s.E), hi - lo, s.H, s.E),
      ),
    headBroadcastAdd: (dg, dG, s) =>
      rowsOf(s.T, s.H * s.E, (t, lo, hi) =>
        call(t, F.headBroadcastAdd, at(dg, lo * s.H * s.E), at(dG, lo * s.E), hi - lo, s.H, s.E),
      ),
    monetHdMix: (y, cc, a, g1, g2, s) => {
      const Em = s.E * s.m,
        Hm = s.H * s.m,
        HE = s.H * s.E;
      rowsOf(s.T, Em, (t, lo, hi) =>
        call(
          t,
          F.monetHdMix,
          at(y, lo * Em),
          at(cc, lo * Hm),
          at(a, lo * Em),
          at(g1, lo * HE),
          at(g2, lo * HE),
          hi - lo,
          s.H,
          s.E,
          s.m,
        ),
      );
    },
    monetHdMixBackward: (da, dg1, dg2, dy, a, g1, g2, cc, s) => {
      const Em = s.E * s.m,
        Hm = s.H * s.m,
        HE = s.H * s.E;
      const sc = scratchPer(4 * Hm);
      rowsOf(
        s.T,
        Em,
        (t, lo, hi) =>
          call(
            t,
            F.monetHdMixBackward,
            at(da, lo * Em),
            at(dg1, lo * HE),
            at(dg2, lo * HE),
            at(dy, lo * Em),
            at(a, lo * Em),
            at(g1, lo * HE),
            at(g2, lo * HE),
            at(cc, lo * Hm),
            hi - lo,
            s.H,
            s.E,
            s.m,
            sc.at,
          ),
        sc,
      );
    },
    monetVdMix: (h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, s) => {
      const Em = s.E * s.m,
        Hm = s.H * s.m,
        HE = s.H * s.E;
      rowsOf(s.T, 4 * Em, (t, lo, hi) =>
        call(
          t,
          F.monetVdMix,
          at(h11, lo * Em),
          at(h12, lo * Em),
          at(h21, lo * Em),
          at(h22, lo * Em),
          at(c1, lo * Hm),
          at(c2, lo * Hm),
          at(a1, lo * Em),
          at(a2, lo * Em),
          at(g1, lo * HE),
          at(g2, lo * HE),
          at(G1, lo * s.E),
          at(G2, lo * s.E),
          hi - lo,
          s.H,
          s.E,
          s.m,
        ),
      );
    },
    monetVdMixBackward: (da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, s) => {
      const Em = s.E * s.m,
        Hm = s.H * s.m,
        HE = s.H * s.E;
      const sc = scratchPer(8 * Hm);
      rowsOf(
        s.T,
        4 * Em,
        (t, lo, hi) =>
          call(
            t,
            F.monetVdMixBackward,
            at(da1, lo * Em),
            at(da2, lo * Em),
            at(dg1, lo * HE),
            at(dg2, lo * HE),
            at(dh11, lo * Em),
            at(dh12, lo * Em),
            at(dh21, lo * Em),
            at(dh22, lo * Em),
            at(a1, lo * Em),
            at(a2, lo * Em),
            at(g1, lo * HE),
            at(g2, lo * HE),
            at(G1, lo * s.E),
            at(G2, lo * s.E),
            at(c1, lo * Hm),
            at(c2, lo * Hm),
            hi - lo,
            s.H,
            s.E,
            s.m,
            sc.at,
          ),
        sc,
      );
    },
    peerRoute: (ids, scores, q, sk, s) => {
      const sc = scratchPer(24 * s.k);
      const Hk = s.H * s.k;
      // per token: H·n sub-key dots of dk/2 and a k² candidate merge
      rowsOf(
        s.T,
        s.H * (s.n * s.dk + s.k * s.k),
        (t, lo, hi) =>
          call(
            t,
            F.peerRoute,
            at(ids, lo * Hk),
            at(scores, lo * Hk),
            at(q, lo * s.H * s.dk),
            p(sk),
            hi - lo,
            s.H,
            s.dk,
            s.n,
            s.k,
            sc.at,
          ),
        sc,
      );
    },
    // sub-key gradients are scatter-adds that tokens share: one thread
    peerRouteBackward: (dq, dsk, dsc, q, sk, ids, s) =>
      k.peerRouteBackward(p(dq), p(dsk), p(dsc), p(q), p(sk), p(ids), s.T, s.H, s.dk, s.n, s.k),
    peerExperts: (y, hpre, x, wd, wu, ids, w, s) => {
      const Hk = s.H * s.k;
      rowsOf(s.T, 2 * Hk * s.d, (t, lo, hi) =>
        call(
          t,
          F.peerExperts,
          at(y, lo * s.d),
          at(hpre, lo * Hk),
          at(x, lo * s.d),
          p(wd),
          p(wu),
          at(ids, lo * Hk),
          at(w, lo * Hk),
          hi - lo,
          s.H,
          s.k,
          s.d,
          ACT[s.kind],
        ),
      );
    },
    // expert-table gradients are scatter-adds that tokens share: one thread
    peerExpertsBackward: (dx, dwd, dwu, dw, dy, x, wd, wu, ids, w, hpre, s) =>
      k.peerExpertsBackward(
        p(dx),
        p(dwd),
        p(dwu),
        p(dw),
        p(dy),
        p(x),
        p(wd),
        p(wu),
        p(ids),
        p(w),
        p(hpre),
        s.T,
        s.H,
        s.k,
        s.d,
        ACT[s.kind],
      ),
    moeSort: (order, pos, off, idx, s) => k.moeSort(p(order), p(pos), p(off), p(idx), s.P, s.E, scratch(4 * s.E)),
    moeDispatch: (xs, x, order, s) =>
      rowsOf(s.P, s.d, (t, lo, hi) => call(t, F.moeDispatch, at(xs, lo * s.d), p(x), at(order, lo), hi - lo, s.k, s.d)),
    moeDispatchBackward: (dx, dxs, pos, s) =>
      rowsOf(s.T, s.k * s.d, (t, lo, hi) =>
        call(t, F.moeDispatchBackward, at(dx, lo * s.d), p(dxs), at(pos, lo * s.k), hi - lo, s.k, s.d),
      ),
    moeCombine: (y, ys, w, pos, s) =>
      rowsOf(s.T, s.k * s.d, (t, lo, hi) =>
        call(t, F.moeCombine, at(y, lo * s.d), p(ys), at(w, lo * s.k), at(pos, lo * s.k), hi - lo, s.k, s.d),
      ),
    // each (token, slot) pair owns its row of dys (pos is a permutation), so tokens split cleanly
    moeCombineBackward: (dys, dw, dy, ys, w, pos, s) =>
      rowsOf(s.T, 2 * s.k * s.d, (t, lo, hi) =>
        call(
          t,
          F.moeCombineBackward,
          p(dys),
          at(dw, lo * s.k),
          at(dy, lo * s.d),
          p(ys),
          at(w, lo * s.k),
          at(pos, lo * s.k),
          hi - lo,
          s.k,
          s.d,
        ),
      ),
    smoeAux: (lb, lz, probs, lse, z, idx, s) =>
      k.smoeAux(p(lb), p(lz), p(probs), p(lse), p(z), p(idx), s.T, s.E, s.k, s.scale, scratch(8 * s.E)),
    smoeAuxBackward: (dz, probs, lse, idx, s) =>
      k.smoeAuxBackward(p(dz), p(probs), p(lse), p(idx), s.T, s.E, s.k, s.coefBalance, s.coefZ, scratch(4 * s.E)),
    gatherRows: (dst, table, idx, s) =>
      rowsOf(s.rows, s.cols, (t, lo, hi) =>
        call(t, F.gatherRows, at(dst, lo * s.cols), p(table), at(idx, lo), hi - lo, s.cols),
      ),
    // two bfloat16 per int32 of `packed`: element i at byte 2·i (parts start on 16 elements)
    widenBf16: (dst, packed, s) =>
      flat(s.n, (t, lo, hi) => call(t, F.widenBf16, at(dst, lo), p(packed) + 2 * lo, hi - lo)),
    gatherRowsBf16: (dst, table, idx, s) =>
      rowsOf(s.rows, s.cols, (t, lo, hi) =>
        call(t, F.gatherRowsBf16, at(dst, lo * s.cols), p(table), at(idx, lo), hi - lo, s.cols),
      ),
    // rows with the same index add into the same row: one thread
    scatterAddRows: (dst, src, idx, s) => k.scatterAddRows(p(dst), p(src), p(idx), s.rows, s.cols),
    // one cos/sin table per (head size, theta), made once (one thread) and grown for longer sequences
    rope: (y, x, s) => {
      const tab = ropeTable(s.S, s.hd, s.theta);
      const seq = s.S * s.heads * s.hd;
      rowsOf(s.B, seq, (t, lo, hi) =>
        call(t, F.ropeApply, at(y, lo * seq), at(x, lo * seq), hi - lo, s.S, s.heads, s.hd, 1, tab.at, tab.S),
      );
    },
    ropeBackward: (dx, dy, s) => {
      const tab = ropeTable(s.S, s.hd, s.theta);
      const seq = s.S * s.heads * s.hd;
      rowsOf(s.B, seq, (t, lo, hi) =>
        call(t, F.ropeApply, at(dx, lo * seq), at(dy, lo * seq), hi - lo, s.S, s.heads, s.hd, -1, tab.at, tab.S),
      );
    },
    attention: (out, probs, q, kk, v, s) => {
      const sc = scratchPer(4 * ex.attentionScratchFloats(s.S, s.hd));
      split(
        s.B * s.nH,
        Math.ceil(MIN_MACS / (s.S * s.S * s.hd)),
        1,
        (t, lo, hi) =>
          call(t, F.attention, p(out), p(probs), p(q), p(kk), p(v), s.B, s.S, s.nH, s.nKV, s.hd, lo, hi, sc.at),
        sc,
      );
    },
    attentionBackward: (dq, dk, dv, dout, q, kk, v, probs, s) => {
      const sc = scratchPer(4 * ex.attentionScratchFloats(s.S, s.hd));
      const perPair = (2 * s.S * s.S * s.hd * s.nH) / s.nKV;
      split(
        s.B * s.nKV,
        Math.ceil(MIN_MACS / perPair),
        1,
        (t, lo, hi) =>
          call(
            t,
            F.attentionBackward,
            p(dq),
            p(dk),
            p(dv),
            p(dout),
            p(q),
            p(kk),
            p(v),
            p(probs),
            s.B,
            s.S,
            s.nH,
            s.nKV,
            s.hd,
            lo,
            hi,
            sc.at,
          ),
        sc,
      );
    },
    // rows (softmax, each row's term) split between threads; the loss, one sum of the terms in row order, on one
    crossEntropy: (loss, probs, logits, tokens, s) => {
      const terms = scratch(8 * s.B * s.S);
      rowsOf(s.B * s.S, s.V, (t, lo, hi) =>
        call(t, F.crossEntropyRows, terms, p(probs), p(logits), p(tokens), lo, hi, s.S, s.V),
      );
      k.crossEntropySum(p(loss), terms, s.B, s.S, s.scale);
    },
    crossEntropyBackward: (dl, probs, tokens, s) => {
      const seq = s.S * s.V;
      rowsOf(s.B, seq, (t, lo, hi) =>
        call(
          t,
          F.crossEntropyBackward,
          at(dl, lo * seq),
          at(probs, lo * seq),
          at(tokens, lo * s.S),
          hi - lo,
          s.S,
          s.V,
          s.scale,
        ),
      );
    },
    stepGuard: (ctl, s) => k.stepGuard(p(ctl), s.accum, s.clip, s.step),
    copyIf: (dst, src, cond, s) => k.copyIf(p(dst), p(src), p(cond), s.n, s.at),
    // a step calls it once per parameter tensor, most of them small (16K elements in monet-vd-small): smaller parts
    adamw: (pp, g, m, v, ctl, s) =>
      flat(
        s.n,
        (t, lo, hi) =>
          call(
            t,
            F.adamw,
            at(pp, lo),
            at(g, lo),
            at(m, lo),
            at(v, lo),
            p(ctl),
            hi - lo,
            s.lr,
            s.beta1,
            s.beta2,
            s.eps,
            s.weightDecay,
            s.step,
            s.gradScale,
          ),
        Math.ceil(MIN_ELEMENTS / 4),
      ),
  };
}

/** True when this engine accepts the relaxed-SIMD build (Node 20 only with --experimental-wasm-relaxed-simd). */
export function relaxedSimdSupported(relaxed: Uint8Array | ArrayBuffer | undefined): boolean {
  return !!relaxed && WebAssembly.validate(relaxed as BufferSource);
}

/**
 * A WASM device from the module bytes: the relaxed-SIMD build when the engine validates it (and `preferRelaxed`
 * is not false), the plain SIMD build otherwise; with `threads` > 1, the shared-memory build of the same choice on
 * that many threads. Where shared memory is unavailable (a browser page that is not cross-origin isolated) it runs
 * on one thread and says why in `threadsNote`.
 */
export async function createWasmDeviceFromBytes(
  bytes: WasmModuleBytes,
  opts: WasmDeviceOptions = {},
): Promise<WasmDevice> {
  const asked = opts.threads ?? 1;
  if (!Number.isInteger(asked) || asked < 1)
    throw new Error(`wasm device: expected a positive integer number of threads, found ${asked}`);
  let threads = asked;
  let threadsNote: string | null = null;
  if (threads > 1) {
    const shared = sharedMemorySupported();
    if (!shared.ok) {
      threadsNote = `running on 1 thread instead of ${asked}: ${shared.why}`;
      threads = 1;
    } else if (!bytes.threads) {
      threadsNote = `running on 1 thread instead of ${asked}: the shared-memory kernels build was not given`;
      threads = 1;
    }
  }
  const relaxedBytes = threads > 1 ? bytes.threadsRelaxed : bytes.relaxed;
  const useRelaxed = opts.preferRelaxed !== false && relaxedSimdSupported(relaxedBytes);
  const src = (useRelaxed ? relaxedBytes! : threads > 1 ? bytes.threads! : bytes.plain) as BufferSource;
  if (!WebAssembly.validate(src))
    throw new Error(
      'wasm device: this engine does not support WebAssembly SIMD (the plain kernels build does not validate)',
    );
  const module = await WebAssembly.compile(src);
  const abort = (_msg: number, _file: number, line: number, col: number) => {
    throw new Error(`wasm kernels aborted at asm line ${line}:${col}`);
  };
  const memory =
    threads > 1 ? new WebAssembly.Memory({ initial: SHARED_INITIAL_PAGES, maximum: MAX_PAGES, shared: true }) : null;
  const instance = await WebAssembly.instantiate(module, { env: memory ? { memory, abort } : { abort } });
  const ex = instance.exports as Exports;
  const pool = await ThreadPool.start({
    threads,
    module,
    memory: ex.memory,
    instance,
    spawn: opts.spawnWorker ?? spawnBrowserWorker,
    canBlock: opts.canBlock ?? typeof (globalThis as { window?: unknown }).window === 'undefined',
  });
  return new WasmDeviceImpl(ex, useRelaxed, pool, threadsNote, opts.splitEverything === true);
}
