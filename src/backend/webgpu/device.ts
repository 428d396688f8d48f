// The WebGPU device: the kernels of src/backend/kernels.ts as WGSL compute shaders (wgsl/<kernel>.wgsl, one file
// per kernel name, `wgsl/common.wgsl` prepended to each), over buffers that stay on the GPU.
//
// Every kernel call only encodes dispatches (see gpu.ts); `read` submits, waits, checks every pending WebGPU error
// and copies back just the tensor asked for. Each dispatch is a named call (call.ts): its sizes by the names of the
// WGSL uniform struct's fields (legend letters: T, H, E, m, ...) and its buffers by the names of the WGSL storage
// bindings, both checked by the compiler against the kernel table generated from the WGSL (`npm run gen:wgsl`).
// Kernels with several passes (e.g. a forward that also saves) are several entry points of one file, dispatched
// in order; passes that need scratch memory allocate it here and free it after the dispatch is queued.
//
// The kernels are grouped by job (memory and elementwise, matrix products, activations, softmax and top-k,
// normalisation, Monet, PEER, SMoE, the LM, the optimiser), one function each; makeKernels joins them, and the
// compiler checks that together they are the whole contract.

import type { Device } from '../device.ts';
import {
  STEP,
  type ActKind,
  type DTensor,
  type DType,
  type F32,
  type I32,
  type Kernels,
  type KernelSignatures,
} from '../kernels.ts';
import { bindCall, type BuffersOf, type EntryOf, type KernelFile, type UniformOf } from './call.ts';
import { type Gpu, openGpu, type GpuBuffer, type OpenOptions } from './gpu.ts';
import { matmul as gemm, SMALL_M } from './matmul.ts';

/** A device tensor: a GPU storage buffer. */
export interface GTensor extends DTensor {
  readonly buf: GpuBuffer;
}

/** Activation codes shared with wgsl/common.wgsl. */
const ACT_CODES: Record<ActKind, number> = { relu: 0, relu2: 1, gelu: 2, silu: 3 };

/** Limits of the PEER retrieval kernel's workgroup arrays (wgsl/peerRoute.wgsl). */
const PEER_MAX_KEYS = 1024;
const PEER_MAX_K = 32;

const b = (x: boolean): number => (x ? 1 : 0);

/**
 * How a call's threads are laid out: one thread per element in 256-wide workgroups (folded into (x, y) past the
 * 65535 limit), one workgroup per row, a fixed number of workgroups, or explicit counts (tiled kernels).
 */
type Launch = { threads: number } | { rows: number } | { groups: number } | { grid: [number, number, number] };

export class WebGpuDevice implements Device {
  readonly name: string;
  readonly kernels: Kernels;
  private live = new Set<DTensor>();
  /** RoPE angle tables by (hd, theta): the longest S asked for so far serves every shorter S (same rows). */
  private ropeTables = new Map<string, { S: number; buf: GpuBuffer }>();

  constructor(readonly gpu: Gpu) {
    this.name = `webgpu (${gpu.description})`;
    this.kernels = makeKernels(this);
  }

  alloc(dtype: 'f32', length: number): F32;
  alloc(dtype: 'i32', length: number): I32;
  alloc(dtype: DType, length: number): DTensor;
  alloc(dtype: DType, length: number): DTensor {
    const t: GTensor = { dtype, length, buf: this.gpu.alloc(length, `${dtype}[${length}]`) };
    this.live.add(t);
    return t;
  }
  upload(data: Float32Array): F32;
  upload(data: Int32Array): I32;
  upload(data: Float32Array | Int32Array): DTensor {
    const t = this.alloc(data instanceof Float32Array ? 'f32' : 'i32', data.length) as GTensor;
    this.gpu.write(t.buf, data);
    return t;
  }
  read(t: F32): Promise<Float32Array>;
  read(t: I32): Promise<Int32Array>;
  async read(t: DTensor): Promise<Float32Array | Int32Array> {
    if (!this.live.has(t)) throw new Error('webgpu device read: tensor was freed or belongs to another device');
    const g = t as GTensor;
    return t.dtype === 'f32' ? this.gpu.read(g.buf) : this.gpu.readI32(g.buf);
  }
  free(t: DTensor): void {
    if (!this.live.delete(t)) return;
    this.gpu.free((t as GTensor).buf);
  }
  dispose(): void {
    this.live.clear();
    this.ropeTables.clear();
    this.gpu.destroy();
  }

  /** The GPU buffer behind a tensor, checking it is live, long enough and of the expected dtype. */
  buf(t: DTensor, need: number, what: string, dtype: DType = 'f32'): GpuBuffer {
    if (!this.live.has(t)) throw new Error(`webgpu ${what}: tensor was freed or belongs to another device`);
    if (t.dtype !== dtype) throw new Error(`webgpu ${what}: expected a ${dtype} tensor, found ${t.dtype}`);
    if (t.length < need) throw new Error(`webgpu ${what}: expected at least ${need} elements, found ${t.length}`);
    return (t as GTensor).buf;
  }

  /**
   * Compile (cached) and dispatch entry point `entry` of wgsl/<file>.wgsl: sizes by uniform field name, buffers by
   * binding name (call.ts), laid out as `launch` says.
   */
  call<K extends KernelFile, E extends EntryOf<K>>(
    file: K,
    entry: E,
    dims: NoInfer<UniformOf<K>>,
    buffers: NoInfer<BuffersOf<K, E>>,
    launch: Launch,
    constants: Record<string, number> = {},
  ): void {
    const c = bindCall(file, entry, dims, buffers);
    const k = this.gpu.kernel(file, c.src, constants, entry);
    this.gpu.dispatch(k, c.uniform, c.bindings, this.workgroups(file, launch));
  }

  /** The workgroup counts of a launch. */
  private workgroups(file: string, launch: Launch): [number, number, number] {
    if ('threads' in launch) return [...this.gpu.grid(launch.threads, 256), 1];
    if ('rows' in launch) return [...this.gpu.grid(launch.rows, 1), 1];
    if ('grid' in launch) return launch.grid;
    const max = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (launch.groups > max)
      throw new Error(`webgpu ${file}: ${launch.groups} workgroups exceed the per-dimension limit ${max}`);
    return [launch.groups, 1, 1];
  }

  scratch(length: number, label: string): GpuBuffer {
    return this.gpu.alloc(length, label);
  }

  /**
   * The (cos, sin) table of RoPE's angles s·theta^(−2i/hd), cs (S, hd/2, 2), for positions s < S. Computed on the
   * host in float64 exactly as the plain-JS and WASM kernels compute them, then rounded to float32 once: WGSL
   * guarantees sin/cos accuracy only on [−π, π], and the angles grow to S − 1. Uploaded once per (hd, theta) and
   * kept on the GPU; a longer S replaces the table (its first rows are the same).
   */
  ropeTable(S: number, hd: number, theta: number): GpuBuffer {
    const key = `${hd}|${theta}`;
    const hit = this.ropeTables.get(key);
    if (hit && hit.S >= S) return hit.buf;
    const half = hd / 2;
    const table = new Float32Array(Math.max(S, 1) * half * 2); // (S, half, 2)
    for (let s = 0; s < S; s++) {
      for (let i = 0; i < half; i++) {
        const angle = s * Math.pow(theta, (-2 * i) / hd);
        table[(s * half + i) * 2] = Math.cos(angle);
        table[(s * half + i) * 2 + 1] = Math.sin(angle);
      }
    }
    if (hit) this.gpu.free(hit.buf);
    const buf = this.gpu.upload(table, `rope cos/sin (S=${S}, hd=${hd}, theta=${theta})`);
    this.ropeTables.set(key, { S, buf });
    return buf;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The kernels, by job. Each group is part of the contract; makeKernels (below) joins them.

/** Some kernels of the contract, each with its contract signature (the keys say which). */
function group<K extends keyof KernelSignatures>(
  kernels: { [P in K]: KernelSignatures[P] },
): Pick<KernelSignatures, K> {
  return kernels;
}

/** Checked GPU buffers of f32 (B) and i32 (I) tensors: live, long enough, of the expected dtype. */
function buffers(dev: WebGpuDevice) {
  return {
    B: (t: DTensor, n: number, what: string) => dev.buf(t, n, what),
    I: (t: DTensor, n: number, what: string) => dev.buf(t, n, what, 'i32'),
  };
}

function memoryKernels(dev: WebGpuDevice) {
  const { B } = buffers(dev);
  return group({
    fill(x, s) {
      const bits = new Uint32Array(1);
      if (x.dtype === 'f32') new Float32Array(bits.buffer)[0] = s.value;
      else new Int32Array(bits.buffer)[0] = s.value;
      dev.call('fill', 'main', { n: s.n, bits: bits[0] }, { x: dev.buf(x, s.n, 'fill x', x.dtype) }, { threads: s.n });
    },
    copyBlock(dst, src, s) {
      if (dst.dtype !== src.dtype)
        throw new Error(`webgpu copyBlock: dst is ${dst.dtype}, src is ${src.dtype}; expected the same dtype`);
      if (s.accumulate && dst.dtype !== 'f32') throw new Error('webgpu copyBlock: accumulate needs f32 tensors');
      if (s.rows === 0 || s.cols === 0) return;
      const needD = s.dstOffset + (s.rows - 1) * s.dstLd + s.cols;
      const needS = s.srcOffset + (s.rows - 1) * s.srcLd + s.cols;
      dev.call(
        'copyBlock',
        'main',
        { ...s, accumulate: b(s.accumulate) },
        { dst: dev.buf(dst, needD, 'copyBlock dst', dst.dtype), src: dev.buf(src, needS, 'copyBlock src', src.dtype) },
        { threads: s.rows * s.cols },
      );
    },
    axpby(y, x, s) {
      dev.call('axpby', 'main', s, { y: B(y, s.n, 'axpby y'), x: B(x, s.n, 'axpby x') }, { threads: s.n });
    },
    addBias(y, bias, s) {
      const n = s.rows * s.cols;
      dev.call(
        'addBias',
        'main',
        s,
        { y: B(y, n, 'addBias y'), bias: B(bias, s.cols, 'addBias bias') },
        { threads: n },
      );
    },
    colSum(out, x, s) {
      const n = s.rows * s.cols;
      dev.call(
        'colSum',
        'main',
        s,
        { outv: B(out, s.cols, 'colSum out'), x: B(x, n, 'colSum x') },
        { threads: s.cols },
      );
    },
    sumSquares(out, x, s) {
      dev.call(
        'sumSquares',
        'main',
        { n: s.n, accumulate: b(s.accumulate) },
        { outv: B(out, 1, 'sumSquares out'), x: B(x, s.n, 'sumSquares x') },
        { groups: 1 },
      );
    },
  });
}

function matrixKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    matmul(c, a, bm, s) {
      gemm(dev.gpu, B(c, s.M * s.N, 'matmul C'), B(a, s.M * s.K, 'matmul A'), B(bm, s.K * s.N, 'matmul B'), {
        M: s.M,
        N: s.N,
        K: s.K,
        transA: s.transA,
        transB: s.transB,
        beta: s.accumulate ? 1 : 0,
      });
    },
    // B bfloat16 (N, K), two per word: 'rows' for a few tokens (one workgroup per column), 'tiles' otherwise
    matmulBf16(c, a, bm, s) {
      if (s.M === 0 || s.N === 0) return;
      const w = 'matmulBf16';
      const dims = { M: s.M, N: s.N, K: s.K, accumulate: b(s.accumulate) };
      const bufs = {
        C: B(c, s.M * s.N, `${w} C`),
        A: B(a, s.M * s.K, `${w} A`),
        B: I(bm, Math.ceil((s.N * s.K) / 2), `${w} B`),
      };
      if (s.M <= SMALL_M) dev.call(w, 'rows', dims, bufs, { rows: s.N });
      else dev.call(w, 'tiles', dims, bufs, { grid: [Math.ceil(s.N / 64), Math.ceil(s.M / 64), 1] });
    },
    matmulGrouped(c, a, bm, offsets, s) {
      if (s.P === 0 || s.N === 0) return;
      const w = 'matmulGrouped';
      dev.call(
        w,
        'main',
        { P: s.P, N: s.N, K: s.K, G: s.G, transB: b(s.transB), accumulate: b(s.accumulate) },
        {
          C: B(c, s.P * s.N, `${w} C`),
          A: B(a, s.P * s.K, `${w} A`),
          B: B(bm, s.G * s.N * s.K, `${w} B`),
          offsets: I(offsets, s.G + 1, `${w} offsets`),
        },
        { grid: [Math.ceil(s.N / 64), Math.ceil(s.P / 64), 1] },
      );
    },
    matmulGroupedTN(db, dc, a, offsets, s) {
      if (s.N === 0 || s.K === 0 || s.G === 0) return;
      const w = 'matmulGroupedTN';
      dev.call(
        w,
        'main',
        s,
        {
          dB: B(db, s.G * s.N * s.K, `${w} dB`),
          dC: B(dc, s.P * s.N, `${w} dC`),
          A: B(a, s.P * s.K, `${w} A`),
          offsets: I(offsets, s.G + 1, `${w} offsets`),
        },
        { grid: [Math.ceil(s.K / 64), Math.ceil(s.N / 64), s.G] },
      );
    },
  });
}

function activationKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    activation(y, x, s) {
      const dims = { n: s.n, kind: ACT_CODES[s.kind] };
      dev.call(
        'activation',
        'main',
        dims,
        { y: B(y, s.n, 'activation y'), x: B(x, s.n, 'activation x') },
        {
          threads: s.n,
        },
      );
    },
    activationBackward(dx, dy, x, s) {
      const w = 'activationBackward';
      dev.call(
        w,
        'main',
        { n: s.n, kind: ACT_CODES[s.kind] },
        { dx: B(dx, s.n, `${w} dx`), dy: B(dy, s.n, `${w} dy`), x: B(x, s.n, `${w} x`) },
        { threads: s.n },
      );
    },
    swiglu(h, g, u, s) {
      const bufs = { h: B(h, s.n, 'swiglu h'), g: B(g, s.n, 'swiglu g'), u: B(u, s.n, 'swiglu u') };
      dev.call('swiglu', 'main', s, bufs, { threads: s.n });
    },
    swigluBackward(dg, du, dh, g, u, s) {
      const w = 'swigluBackward';
      const bufs = {
        dg: B(dg, s.n, `${w} dg`),
        du: B(du, s.n, `${w} du`),
        dh: B(dh, s.n, `${w} dh`),
        g: B(g, s.n, `${w} g`),
        u: B(u, s.n, `${w} u`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.n });
    },
    thresholdTopkMask(mask, x, s) {
      const n = s.rows * s.n;
      const w = 'thresholdTopkMask';
      dev.call(w, 'main', s, { mask: I(mask, n, `${w} mask`), x: B(x, n, `${w} x`) }, { threads: n });
    },
    maskScale(y, x, mask, s) {
      const yb = B(y, s.n, 'maskScale y');
      const mb = I(mask, s.n, 'maskScale mask');
      // WebGPU forbids binding one buffer both writable and read-only in a dispatch: the aliased call has its own
      // entry.
      if (y === x) dev.call('maskScale', 'inplace', s, { y: yb, mask: mb }, { threads: s.n });
      else dev.call('maskScale', 'main', s, { y: yb, x: B(x, s.n, 'maskScale x'), mask: mb }, { threads: s.n });
    },
  });
}

function softmaxKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    softmaxRows(y, x, s) {
      const n = s.rows * s.n;
      dev.call(
        'softmaxRows',
        'main',
        s,
        { y: B(y, n, 'softmaxRows y'), x: B(x, n, 'softmaxRows x') },
        { rows: s.rows },
      );
    },
    softmaxBackward(dx, y, dy, s) {
      const n = s.rows * s.n;
      const w = 'softmaxBackward';
      const bufs = { dx: B(dx, n, `${w} dx`), y: B(y, n, `${w} y`), dy: B(dy, n, `${w} dy`) };
      dev.call(w, 'main', s, bufs, { rows: s.rows });
    },
    topkRows(idx, val, x, s) {
      if (s.k > s.n) throw new Error(`webgpu topkRows: k = ${s.k} exceeds the row length n = ${s.n}`);
      const bufs = {
        idx: I(idx, s.rows * s.k, 'topkRows idx'),
        val: B(val, s.rows * s.k, 'topkRows val'),
        x: B(x, s.rows * s.n, 'topkRows x'),
      };
      dev.call('topkRows', 'main', s, bufs, { threads: s.rows * s.n });
    },
    topkRowsBackward(dx, dval, idx, s) {
      const w = 'topkRowsBackward';
      const bufs = {
        dx: B(dx, s.rows * s.n, `${w} dx`),
        dval: B(dval, s.rows * s.k, `${w} dval`),
        idx: I(idx, s.rows * s.k, `${w} idx`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.rows * s.k });
    },
  });
}

function normKernels(dev: WebGpuDevice) {
  const { B } = buffers(dev);
  return group({
    rmsnorm(y, rstd, x, w, s) {
      const n = s.rows * s.d;
      const bufs = {
        y: B(y, n, 'rmsnorm y'),
        rstd: B(rstd, s.rows, 'rmsnorm rstd'),
        x: B(x, n, 'rmsnorm x'),
        w: B(w, s.d, 'rmsnorm w'),
      };
      dev.call('rmsnorm', 'main', s, bufs, { rows: s.rows });
    },
    rmsnormBackward(dx, dw, dy, x, w, rstd, s) {
      const n = s.rows * s.d;
      const k = 'rmsnormBackward';
      const bDy = B(dy, n, `${k} dy`);
      const bX = B(x, n, `${k} x`);
      const bRstd = B(rstd, s.rows, `${k} rstd`);
      const dims = { rows: s.rows, d: s.d };
      dev.call(
        k,
        'main',
        dims,
        { dx: B(dx, n, `${k} dx`), dy: bDy, x: bX, w: B(w, s.d, `${k} w`), rstd: bRstd },
        {
          rows: s.rows,
        },
      );
      dev.call(k, 'dweight', dims, { dw: B(dw, s.d, `${k} dw`), dy: bDy, x: bX, rstd: bRstd }, { threads: s.d });
    },
    groupStats(mean, variance, x, s) {
      const w = 'groupStats';
      const bufs = {
        mean: B(mean, s.groups, `${w} mean`),
        variance: B(variance, s.groups, `${w} variance`),
        x: B(x, s.outer * s.groups * s.inner, `${w} x`),
      };
      dev.call(w, 'main', s, bufs, { groups: s.groups });
    },
    batchnorm(y, x, mean, variance, gamma, beta, s) {
      const n = s.rows * s.cols;
      const w = 'batchnorm';
      const bufs = {
        y: B(y, n, `${w} y`),
        x: B(x, n, `${w} x`),
        mean: B(mean, s.cols, `${w} mean`),
        variance: B(variance, s.cols, `${w} variance`),
        gamma: B(gamma, s.cols, `${w} gamma`),
        beta: B(beta, s.cols, `${w} beta`),
      };
      dev.call(w, 'main', s, bufs, { threads: n });
    },
    batchnormBackward(dx, dgamma, dbeta, dy, x, mean, variance, gamma, s) {
      const n = s.rows * s.cols;
      const w = 'batchnormBackward';
      const bufs = {
        dx: B(dx, n, `${w} dx`),
        dgamma: B(dgamma, s.cols, `${w} dgamma`),
        dbeta: B(dbeta, s.cols, `${w} dbeta`),
        dy: B(dy, n, `${w} dy`),
        x: B(x, n, `${w} x`),
        mean: B(mean, s.cols, `${w} mean`),
        variance: B(variance, s.cols, `${w} variance`),
        gamma: B(gamma, s.cols, `${w} gamma`),
      };
      dev.call(w, 'main', { ...s, train: b(s.train) }, bufs, { groups: s.cols });
    },
    runningStatsUpdate(runMean, runVar, mean, variance, s) {
      const w = 'runningStatsUpdate';
      const bufs = {
        runMean: B(runMean, s.groups, `${w} runMean`),
        runVar: B(runVar, s.groups, `${w} runVar`),
        mean: B(mean, s.groups, `${w} mean`),
        variance: B(variance, s.groups, `${w} variance`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.groups });
    },
  });
}

function monetKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    monetRoute(g, mask, z, mean, variance, s) {
      const n = s.T * s.H * s.E;
      const w = 'monetRoute';
      const bufs = {
        g: B(g, n, `${w} g`),
        mask: I(mask, n, `${w} mask`),
        z: B(z, n, `${w} z`),
        mean: B(mean, s.H, `${w} mean`),
        variance: B(variance, s.H, `${w} variance`),
      };
      dev.call(w, 'main', s, bufs, { rows: s.T * s.H });
    },
    monetUnifLoss(loss, g, s) {
      const bufs = { loss: B(loss, 1, 'monetUnifLoss loss'), g: B(g, s.T * s.H * s.E, 'monetUnifLoss g') };
      dev.call('monetUnifLoss', 'main', s, bufs, { groups: 1 });
    },
    monetUnifBackward(dg, g, s) {
      const n = s.T * s.H * s.E;
      const bufs = { dg: B(dg, n, 'monetUnifBackward dg'), g: B(g, n, 'monetUnifBackward g') };
      dev.call('monetUnifBackward', 'main', s, bufs, { threads: s.H * s.E });
    },
    monetAmbLoss(loss, g, s) {
      const bufs = { loss: B(loss, 1, 'monetAmbLoss loss'), g: B(g, s.T * s.H * s.E, 'monetAmbLoss g') };
      dev.call('monetAmbLoss', 'main', s, bufs, { groups: 1 });
    },
    monetAmbBackward(dg, g, s) {
      const n = s.T * s.H * s.E;
      const bufs = { dg: B(dg, n, 'monetAmbBackward dg'), g: B(g, n, 'monetAmbBackward g') };
      dev.call('monetAmbBackward', 'main', s, bufs, { threads: s.T * s.H });
    },
    headSum(G, g, s) {
      const bufs = { G: B(G, s.T * s.E, 'headSum G'), g: B(g, s.T * s.H * s.E, 'headSum g') };
      dev.call('headSum', 'main', s, bufs, { threads: s.T * s.E });
    },
    headBroadcastAdd(dg, dG, s) {
      const n = s.T * s.H * s.E;
      const bufs = { dg: B(dg, n, 'headBroadcastAdd dg'), dG: B(dG, s.T * s.E, 'headBroadcastAdd dG') };
      dev.call('headBroadcastAdd', 'main', s, bufs, { threads: n });
    },
    monetHdMix(y, cc, a, g1, g2, s) {
      const { T, H, E, m } = s;
      const w = 'monetHdMix';
      const bCc = B(cc, T * H * m, `${w} cc`);
      // cc = Σ_i g1·a per (t, h); then y = Σ_h g2·cc per (t, j)
      dev.call(
        w,
        'main',
        s,
        { cc: bCc, a: B(a, T * E * m, `${w} a`), g1: B(g1, T * H * E, `${w} g1`) },
        {
          threads: T * H * m,
        },
      );
      dev.call(
        w,
        'spread',
        s,
        { y: B(y, T * E * m, `${w} y`), cc: bCc, g2: B(g2, T * H * E, `${w} g2`) },
        {
          threads: T * E * m,
        },
      );
    },
    monetHdMixBackward(da, dg1, dg2, dy, a, g1, g2, cc, s) {
      const { T, H, E, m } = s;
      const w = 'monetHdMixBackward';
      const bDy = B(dy, T * E * m, `${w} dy`);
      const dcc = dev.scratch(T * H * m, `${w} dcc`);
      dev.call(
        w,
        'main',
        s,
        { dg2: B(dg2, T * H * E, `${w} dg2`), dy: bDy, cc: B(cc, T * H * m, `${w} cc`) },
        {
          threads: T * H * E,
        },
      );
      dev.call(w, 'dcc_pass', s, { dy: bDy, g2: B(g2, T * H * E, `${w} g2`), dcc }, { threads: T * H * m });
      dev.call(
        w,
        'dg1_pass',
        s,
        { dg1: B(dg1, T * H * E, `${w} dg1`), a: B(a, T * E * m, `${w} a`), dcc },
        {
          threads: T * H * E,
        },
      );
      dev.call(
        w,
        'da_pass',
        s,
        { da: B(da, T * E * m, `${w} da`), g1: B(g1, T * H * E, `${w} g1`), dcc },
        {
          threads: T * E * m,
        },
      );
      dev.gpu.free(dcc);
    },
    monetVdMix(h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, s) {
      const { T, H, E, m } = s;
      const w = 'monetVdMix';
      const tem = T * E * m;
      const thm = T * H * m;
      const the = T * H * E;
      const t = {
        c1: B(c1, thm, `${w} c1`),
        c2: B(c2, thm, `${w} c2`),
        a1: B(a1, tem, `${w} a1`),
        a2: B(a2, tem, `${w} a2`),
        g1: B(g1, the, `${w} g1`),
        g2: B(g2, the, `${w} g2`),
      };
      // Three passes of at most 6 storage buffers each (WebGPU guarantees 8 per stage; all twelve would not fit).
      dev.call(w, 'main', s, t, { threads: thm });
      const straight = { h11: B(h11, tem, `${w} h11`), h22: B(h22, tem, `${w} h22`), a1: t.a1, a2: t.a2 };
      dev.call(
        w,
        'straight',
        s,
        { ...straight, G1: B(G1, T * E, `${w} G1`), G2: B(G2, T * E, `${w} G2`) },
        {
          threads: tem,
        },
      );
      const cross = { h12: B(h12, tem, `${w} h12`), h21: B(h21, tem, `${w} h21`) };
      dev.call(w, 'cross', s, { ...cross, c1: t.c1, c2: t.c2, g1: t.g1, g2: t.g2 }, { threads: tem });
    },
    monetVdMixBackward(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, s) {
      const { T, H, E, m } = s;
      const w = 'monetVdMixBackward';
      const tem = T * E * m;
      const thm = T * H * m;
      const the = T * H * E;
      const t = {
        dh11: B(dh11, tem, `${w} dh11`),
        dh12: B(dh12, tem, `${w} dh12`),
        dh21: B(dh21, tem, `${w} dh21`),
        dh22: B(dh22, tem, `${w} dh22`),
        g1: B(g1, the, `${w} g1`),
        g2: B(g2, the, `${w} g2`),
      };
      const dc = dev.scratch(2 * thm, `${w} dc`);
      // the cross flows' gradient of c1, c2 first; then one pass per router half for dg and da, so that no pass
      // uses more than 6 storage buffers (WebGPU: 8 per stage)
      dev.call(w, 'main', s, { dh12: t.dh12, dh21: t.dh21, g1: t.g1, g2: t.g2, dc }, { threads: thm });
      const half1 = { dh11: t.dh11, dh12: t.dh12, a1: B(a1, tem, `${w} a1`), c2: B(c2, thm, `${w} c2`) };
      dev.call(w, 'dg1_pass', s, { ...half1, dg1: B(dg1, the, `${w} dg1`), dc }, { threads: the });
      const half2 = { dh21: t.dh21, dh22: t.dh22, a2: B(a2, tem, `${w} a2`), c1: B(c1, thm, `${w} c1`) };
      dev.call(w, 'dg2_pass', s, { ...half2, dg2: B(dg2, the, `${w} dg2`), dc }, { threads: the });
      const da1Pass = { da1: B(da1, tem, `${w} da1`), dh11: t.dh11, g1: t.g1, G1: B(G1, T * E, `${w} G1`) };
      dev.call(w, 'da1_pass', s, { ...da1Pass, dc }, { threads: tem });
      const da2Pass = { da2: B(da2, tem, `${w} da2`), dh22: t.dh22, g2: t.g2, G2: B(G2, T * E, `${w} G2`) };
      dev.call(w, 'da2_pass', s, { ...da2Pass, dc }, { threads: tem });
      dev.gpu.free(dc);
    },
  });
}

function peerKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    peerRoute(ids, scores, q, subKeys, s) {
      const { T, H, dk, n, k } = s;
      if (n > PEER_MAX_KEYS || k > PEER_MAX_K || k > n) {
        throw new Error(
          `webgpu peerRoute: supports n ≤ ${PEER_MAX_KEYS} sub-keys per side and k ≤ min(${PEER_MAX_K}, n); ` +
            `found n = ${n}, k = ${k}`,
        );
      }
      const bufs = {
        ids: I(ids, T * H * k, 'peerRoute ids'),
        scores: B(scores, T * H * k, 'peerRoute scores'),
        q: B(q, T * H * dk, 'peerRoute q'),
        subKeys: B(subKeys, 2 * n * (dk / 2), 'peerRoute subKeys'),
      };
      dev.call('peerRoute', 'main', s, bufs, { rows: T * H });
    },
    peerRouteBackward(dq, dSubKeys, dscores, q, subKeys, ids, s) {
      const { T, H, dk, n, k } = s;
      const w = 'peerRouteBackward';
      const bDs = B(dscores, T * H * k, `${w} dscores`);
      const bIds = I(ids, T * H * k, `${w} ids`);
      const bDq = B(dq, T * H * dk, `${w} dq`);
      dev.call(
        w,
        'main',
        s,
        { dq: bDq, dscores: bDs, subKeys: B(subKeys, 2 * n * (dk / 2), `${w} subKeys`), ids: bIds },
        {
          threads: T * H * dk,
        },
      );
      const bDk = B(dSubKeys, 2 * n * (dk / 2), `${w} dSubKeys`);
      dev.call(
        w,
        'dkeys',
        s,
        { dSubKeys: bDk, dscores: bDs, q: B(q, T * H * dk, `${w} q`), ids: bIds },
        {
          threads: T * H * k * dk,
        },
      );
    },
    peerExperts(y, hpre, x, wDown, wUp, ids, wt, s) {
      const { T, H, k, d } = s;
      const dims = { T, H, k, d, kind: ACT_CODES[s.kind] };
      const w = 'peerExperts';
      const bH = B(hpre, T * H * k, `${w} hpre`);
      const bIds = I(ids, T * H * k, `${w} ids`);
      dev.call(
        w,
        'main',
        dims,
        { hpre: bH, x: B(x, T * d, `${w} x`), wDown: B(wDown, 1, `${w} wDown`), ids: bIds },
        {
          threads: T * H * k,
        },
      );
      const combine = { y: B(y, T * d, `${w} y`), hpre: bH, wUp: B(wUp, 1, `${w} wUp`), ids: bIds };
      dev.call(w, 'combine', dims, { ...combine, w: B(wt, T * H * k, `${w} w`) }, { threads: T * d });
    },
    peerExpertsBackward(dx, dwDown, dwUp, dw, dy, x, wDown, wUp, ids, wt, hpre, s) {
      const { T, H, k, d } = s;
      const dims = { T, H, k, d, kind: ACT_CODES[s.kind] };
      const w = 'peerExpertsBackward';
      const thk = T * H * k;
      const shared = {
        dy: B(dy, T * d, `${w} dy`),
        ids: I(ids, thk, `${w} ids`),
        w: B(wt, thk, `${w} w`),
        hpre: B(hpre, thk, `${w} hpre`),
      };
      const dh = dev.scratch(thk, `${w} dh`);
      dev.call(
        w,
        'main',
        dims,
        { ...shared, dw: B(dw, thk, `${w} dw`), wUp: B(wUp, 1, `${w} wUp`), dh },
        {
          threads: thk,
        },
      );
      const dinput = { dx: B(dx, T * d, `${w} dx`), wDown: B(wDown, 1, `${w} wDown`), ids: shared.ids, dh };
      dev.call(w, 'dinput', dims, dinput, { threads: T * d });
      const tables = { dwDown: B(dwDown, wDown.length, `${w} dwDown`), dwUp: B(dwUp, wUp.length, `${w} dwUp`) };
      dev.call(w, 'dtables', dims, { ...tables, ...shared, x: B(x, T * d, `${w} x`), dh }, { threads: thk * d });
      dev.gpu.free(dh);
    },
  });
}

function smoeKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    moeSort(order, pos, offsets, expertIdx, s) {
      const bOff = I(offsets, s.E + 1, 'moeSort offsets');
      const bIdx = I(expertIdx, s.P, 'moeSort expertIdx');
      dev.call('moeSort', 'main', s, { offsets: bOff, expertIdx: bIdx }, { threads: s.E + 1 });
      const place = { order: I(order, s.P, 'moeSort order'), pos: I(pos, s.P, 'moeSort pos') };
      dev.call('moeSort', 'place', s, { ...place, offsets: bOff, expertIdx: bIdx }, { threads: s.P });
    },
    moeDispatch(xs, x, order, s) {
      const w = 'moeDispatch';
      const bufs = { xs: B(xs, s.P * s.d, `${w} xs`), x: B(x, 1, `${w} x`), order: I(order, s.P, `${w} order`) };
      dev.call(w, 'main', s, bufs, { threads: s.P * s.d });
    },
    moeDispatchBackward(dx, dxs, pos, s) {
      const w = 'moeDispatchBackward';
      const bufs = {
        dx: B(dx, s.T * s.d, `${w} dx`),
        dxs: B(dxs, s.T * s.k * s.d, `${w} dxs`),
        pos: I(pos, s.T * s.k, `${w} pos`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.T * s.d });
    },
    moeCombine(y, ys, wt, pos, s) {
      const w = 'moeCombine';
      const bufs = {
        y: B(y, s.T * s.d, `${w} y`),
        ys: B(ys, s.T * s.k * s.d, `${w} ys`),
        w: B(wt, s.T * s.k, `${w} w`),
        pos: I(pos, s.T * s.k, `${w} pos`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.T * s.d });
    },
    moeCombineBackward(dys, dw, dy, ys, wt, pos, s) {
      const P = s.T * s.k;
      const w = 'moeCombineBackward';
      const bDy = B(dy, s.T * s.d, `${w} dy`);
      const bPos = I(pos, P, `${w} pos`);
      dev.call(
        w,
        'main',
        s,
        { dys: B(dys, P * s.d, `${w} dys`), dy: bDy, w: B(wt, P, `${w} w`), pos: bPos },
        {
          threads: P * s.d,
        },
      );
      dev.call(
        w,
        'dweight',
        s,
        { dw: B(dw, P, `${w} dw`), dy: bDy, ys: B(ys, P * s.d, `${w} ys`), pos: bPos },
        {
          threads: P,
        },
      );
    },
    smoeAux(lossBalance, lossZ, probs, lse, z, expertIdx, s) {
      const w = 'smoeAux';
      const bProbs = B(probs, s.T * s.E, `${w} probs`);
      const bLse = B(lse, s.T, `${w} lse`);
      dev.call(w, 'main', s, { probs: bProbs, lse: bLse, z: B(z, s.T * s.E, `${w} z`) }, { threads: s.T });
      const losses = { lossBalance: B(lossBalance, 1, `${w} lossBalance`), lossZ: B(lossZ, 1, `${w} lossZ`) };
      const rest = { probs: bProbs, lse: bLse, expertIdx: I(expertIdx, s.T * s.k, `${w} expertIdx`) };
      dev.call(w, 'losses', s, { ...losses, ...rest }, { groups: 1 });
    },
    smoeAuxBackward(dz, probs, lse, expertIdx, s) {
      const w = 'smoeAuxBackward';
      const f = dev.scratch(s.E, `${w} f`); // the fraction of routing slots of each expert
      dev.call(w, 'main', s, { expertIdx: I(expertIdx, s.T * s.k, `${w} expertIdx`), f }, { threads: s.E });
      const rows = { dz: B(dz, s.T * s.E, `${w} dz`), probs: B(probs, s.T * s.E, `${w} probs`) };
      dev.call(w, 'rows', s, { ...rows, lse: B(lse, s.T, `${w} lse`), f }, { threads: s.T });
      dev.gpu.free(f);
    },
  });
}

function lmKernels(dev: WebGpuDevice) {
  const { B, I } = buffers(dev);
  return group({
    widenBf16(dst, packed, s) {
      if (s.n === 0) return;
      const bufs = { dst: B(dst, s.n, 'widenBf16 dst'), packed: I(packed, Math.ceil(s.n / 2), 'widenBf16 packed') };
      dev.call('widenBf16', 'main', s, bufs, { threads: s.n });
    },
    gatherRowsBf16(dst, table, idx, s) {
      const w = 'gatherRowsBf16';
      const bufs = {
        dst: B(dst, s.rows * s.cols, `${w} dst`),
        table: I(table, Math.ceil(s.cols / 2), `${w} table`),
        idx: I(idx, s.rows, `${w} idx`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.rows * s.cols });
    },
    gatherRows(dst, table, idx, s) {
      const w = 'gatherRows';
      const bufs = {
        dst: B(dst, s.rows * s.cols, `${w} dst`),
        table: B(table, s.cols, `${w} table`),
        idx: I(idx, s.rows, `${w} idx`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.rows * s.cols });
    },
    scatterAddRows(dst, src, idx, s) {
      const w = 'scatterAddRows';
      const bufs = {
        dst: B(dst, s.cols, `${w} dst`),
        src: B(src, s.rows * s.cols, `${w} src`),
        idx: I(idx, s.rows, `${w} idx`),
      };
      dev.call(w, 'main', s, bufs, { threads: s.rows * s.cols });
    },
    rope(y, x, s) {
      const n = s.B * s.S * s.heads * s.hd;
      if (n === 0) return;
      const bufs = { y: B(y, n, 'rope y'), x: B(x, n, 'rope x'), cs: dev.ropeTable(s.S, s.hd, s.theta) };
      const dims = { B: s.B, S: s.S, heads: s.heads, hd: s.hd };
      dev.call('rope', 'main', dims, bufs, { threads: n / 2 }, { SIGN: 1, ACCUMULATE: 0 });
    },
    ropeBackward(dx, dy, s) {
      const n = s.B * s.S * s.heads * s.hd;
      if (n === 0) return;
      // the transpose of a rotation is the rotation by −angle, accumulated into dx
      const bufs = {
        y: B(dx, n, 'ropeBackward dx'),
        x: B(dy, n, 'ropeBackward dy'),
        cs: dev.ropeTable(s.S, s.hd, s.theta),
      };
      const dims = { B: s.B, S: s.S, heads: s.heads, hd: s.hd };
      dev.call('rope', 'main', dims, bufs, { threads: n / 2 }, { SIGN: -1, ACCUMULATE: 1 });
    },
    attention(out, probs, q, kk, v, s) {
      const { B: Bn, S, nH, nKV, hd } = s;
      const w = 'attention';
      const bP = B(probs, Bn * nH * S * S, `${w} probs`);
      dev.call(
        w,
        'main',
        s,
        { probs: bP, q: B(q, Bn * S * nH * hd, `${w} q`), k: B(kk, Bn * S * nKV * hd, `${w} k`) },
        {
          threads: Bn * nH * S,
        },
      );
      dev.call(
        w,
        'mix_values',
        s,
        { outv: B(out, Bn * S * nH * hd, `${w} out`), probs: bP, v: B(v, Bn * S * nKV * hd, `${w} v`) },
        {
          threads: Bn * S * nH * hd,
        },
      );
    },
    attentionBackward(dq, dk, dv, dout, q, kk, v, probs, s) {
      const { B: Bn, S, nH, nKV, hd } = s;
      const w = 'attentionBackward';
      const nq = Bn * S * nH * hd;
      const nk = Bn * S * nKV * hd;
      const np = Bn * nH * S * S;
      const bDo = B(dout, nq, `${w} dout`);
      const bP = B(probs, np, `${w} probs`);
      const dS = dev.scratch(np, `${w} dS`);
      dev.call(w, 'main', s, { dout: bDo, v: B(v, nk, `${w} v`), probs: bP, dS }, { threads: Bn * nH * S });
      dev.call(w, 'dquery', s, { dq: B(dq, nq, `${w} dq`), k: B(kk, nk, `${w} k`), dS }, { threads: nq });
      const dkv = { dk: B(dk, nk, `${w} dk`), dv: B(dv, nk, `${w} dv`), dout: bDo, q: B(q, nq, `${w} q`) };
      dev.call(w, 'dkv', s, { ...dkv, probs: bP, dS }, { threads: nk });
      dev.gpu.free(dS);
    },
    crossEntropy(loss, probs, logits, tokens, s) {
      const rows = s.B * s.S;
      const w = 'crossEntropy';
      const bP = B(probs, rows * s.V, `${w} probs`);
      dev.call(w, 'main', s, { probs: bP, logits: B(logits, rows * s.V, `${w} logits`) }, { rows });
      dev.call(
        w,
        'total',
        s,
        { loss: B(loss, 1, `${w} loss`), probs: bP, tokens: I(tokens, rows, `${w} tokens`) },
        {
          groups: 1,
        },
      );
    },
    crossEntropyBackward(dlogits, probs, tokens, s) {
      const n = s.B * s.S * s.V;
      const w = 'crossEntropyBackward';
      const bufs = {
        dlogits: B(dlogits, n, `${w} dlogits`),
        probs: B(probs, n, `${w} probs`),
        tokens: I(tokens, s.B * s.S, `${w} tokens`),
      };
      dev.call(w, 'main', s, bufs, { threads: n });
    },
  });
}

function optimiserKernels(dev: WebGpuDevice) {
  const { B } = buffers(dev);
  return group({
    stepGuard(ctl, s) {
      dev.call('stepGuard', 'main', s, { ctl: B(ctl, STEP.size, 'stepGuard ctl') }, { groups: 1 });
    },
    copyIf(dst, src, cond, s) {
      if (s.n === 0) return;
      const bufs = {
        dst: B(dst, s.n, 'copyIf dst'),
        src: B(src, s.n, 'copyIf src'),
        cond: B(cond, s.at + 1, 'copyIf cond'),
      };
      dev.call('copyIf', 'main', s, bufs, { threads: s.n });
    },
    adamw(p, g, m, v, ctl, s) {
      // bias corrections 1 − β^t on the host in float64 (Math.pow: the same number every backend uses)
      const dims = { ...s, bc1: 1 - Math.pow(s.beta1, s.step), bc2: 1 - Math.pow(s.beta2, s.step) };
      const bufs = {
        p: B(p, s.n, 'adamw p'),
        g: B(g, s.n, 'adamw g'),
        m: B(m, s.n, 'adamw m'),
        v: B(v, s.n, 'adamw v'),
        ctl: B(ctl, STEP.size, 'adamw ctl'),
      };
      dev.call('adamw', 'main', dims, bufs, { threads: s.n });
    },
  });
}

/** Every kernel of the contract; the compiler refuses a missing one. */
function makeKernels(dev: WebGpuDevice): Kernels {
  const k: KernelSignatures = {
    ...memoryKernels(dev),
    ...matrixKernels(dev),
    ...activationKernels(dev),
    ...softmaxKernels(dev),
    ...normKernels(dev),
    ...monetKernels(dev),
    ...peerKernels(dev),
    ...smoeKernels(dev),
    ...lmKernels(dev),
    ...optimiserKernels(dev),
  };
  return k;
}

/** Open a GPU and wrap it as a Device (throws NoAdapterError, with the reason, where there is none). */
export async function createWebGpuDevice(opts: OpenOptions = {}): Promise<WebGpuDevice> {
  return new WebGpuDevice(await openGpu(opts));
}
