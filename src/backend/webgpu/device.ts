// The WebGPU device: the kernels of src/backend/kernels.ts as WGSL compute shaders (wgsl/<kernel>.wgsl, one file
// per kernel name, `wgsl/common.wgsl` prepended to each), over buffers that stay on the GPU.
//
// Every kernel call only encodes dispatches (see gpu.ts); `read` submits, waits, checks every pending WebGPU error
// and copies back just the tensor asked for. Sizes travel in a uniform struct whose fields are the kernel's size
// object in signature order (legend letters: T, H, E, m, ...), so the WGSL header and the TS call read alike.
// Kernels with several passes (e.g. a forward that also saves) are several entry points of one file, dispatched
// in order; passes that need scratch memory allocate it here and free it after the dispatch is queued.

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
import { type Gpu, openGpu, type GpuBuffer, type OpenOptions, type UniformField } from './gpu.ts';
import { matmul as gemm } from './matmul.ts';

import common from '../../../wgsl/common.wgsl';
import fillSrc from '../../../wgsl/fill.wgsl';
import copyBlockSrc from '../../../wgsl/copyBlock.wgsl';
import axpbySrc from '../../../wgsl/axpby.wgsl';
import addBiasSrc from '../../../wgsl/addBias.wgsl';
import colSumSrc from '../../../wgsl/colSum.wgsl';
import sumSquaresSrc from '../../../wgsl/sumSquares.wgsl';
import matmulGroupedSrc from '../../../wgsl/matmulGrouped.wgsl';
import matmulGroupedTNSrc from '../../../wgsl/matmulGroupedTN.wgsl';
import activationSrc from '../../../wgsl/activation.wgsl';
import activationBackwardSrc from '../../../wgsl/activationBackward.wgsl';
import swigluSrc from '../../../wgsl/swiglu.wgsl';
import swigluBackwardSrc from '../../../wgsl/swigluBackward.wgsl';
import thresholdTopkMaskSrc from '../../../wgsl/thresholdTopkMask.wgsl';
import maskScaleSrc from '../../../wgsl/maskScale.wgsl';
import softmaxRowsSrc from '../../../wgsl/softmaxRows.wgsl';
import softmaxBackwardSrc from '../../../wgsl/softmaxBackward.wgsl';
import topkRowsSrc from '../../../wgsl/topkRows.wgsl';
import topkRowsBackwardSrc from '../../../wgsl/topkRowsBackward.wgsl';
import rmsnormSrc from '../../../wgsl/rmsnorm.wgsl';
import rmsnormBackwardSrc from '../../../wgsl/rmsnormBackward.wgsl';
import groupStatsSrc from '../../../wgsl/groupStats.wgsl';
import batchnormSrc from '../../../wgsl/batchnorm.wgsl';
import batchnormBackwardSrc from '../../../wgsl/batchnormBackward.wgsl';
import runningStatsUpdateSrc from '../../../wgsl/runningStatsUpdate.wgsl';
import monetRouteSrc from '../../../wgsl/monetRoute.wgsl';
import monetUnifLossSrc from '../../../wgsl/monetUnifLoss.wgsl';
import monetUnifBackwardSrc from '../../../wgsl/monetUnifBackward.wgsl';
import monetAmbLossSrc from '../../../wgsl/monetAmbLoss.wgsl';
import monetAmbBackwardSrc from '../../../wgsl/monetAmbBackward.wgsl';
import headSumSrc from '../../../wgsl/headSum.wgsl';
import headBroadcastAddSrc from '../../../wgsl/headBroadcastAdd.wgsl';
import monetHdMixSrc from '../../../wgsl/monetHdMix.wgsl';
import monetHdMixBackwardSrc from '../../../wgsl/monetHdMixBackward.wgsl';
import monetVdMixSrc from '../../../wgsl/monetVdMix.wgsl';
import monetVdMixBackwardSrc from '../../../wgsl/monetVdMixBackward.wgsl';
import peerRouteSrc from '../../../wgsl/peerRoute.wgsl';
import peerRouteBackwardSrc from '../../../wgsl/peerRouteBackward.wgsl';
import peerExpertsSrc from '../../../wgsl/peerExperts.wgsl';
import peerExpertsBackwardSrc from '../../../wgsl/peerExpertsBackward.wgsl';
import moeSortSrc from '../../../wgsl/moeSort.wgsl';
import moeDispatchSrc from '../../../wgsl/moeDispatch.wgsl';
import moeDispatchBackwardSrc from '../../../wgsl/moeDispatchBackward.wgsl';
import moeCombineSrc from '../../../wgsl/moeCombine.wgsl';
import moeCombineBackwardSrc from '../../../wgsl/moeCombineBackward.wgsl';
import smoeAuxSrc from '../../../wgsl/smoeAux.wgsl';
import smoeAuxBackwardSrc from '../../../wgsl/smoeAuxBackward.wgsl';
import gatherRowsSrc from '../../../wgsl/gatherRows.wgsl';
import widenBf16Src from '../../../wgsl/widenBf16.wgsl';
import scatterAddRowsSrc from '../../../wgsl/scatterAddRows.wgsl';
import ropeSrc from '../../../wgsl/rope.wgsl';
import attentionSrc from '../../../wgsl/attention.wgsl';
import attentionBackwardSrc from '../../../wgsl/attentionBackward.wgsl';
import crossEntropySrc from '../../../wgsl/crossEntropy.wgsl';
import crossEntropyBackwardSrc from '../../../wgsl/crossEntropyBackward.wgsl';
import adamwSrc from '../../../wgsl/adamw.wgsl';
import stepGuardSrc from '../../../wgsl/stepGuard.wgsl';
import copyIfSrc from '../../../wgsl/copyIf.wgsl';

/** A device tensor: a GPU storage buffer. */
interface GTensor extends DTensor {
  readonly buf: GpuBuffer;
}

/** Activation codes shared with wgsl/common.wgsl. */
const ACT_CODES: Record<ActKind, number> = { relu: 0, relu2: 1, gelu: 2, silu: 3 };

/** Limits of the PEER retrieval kernel's workgroup arrays (wgsl/peerRoute.wgsl). */
const PEER_MAX_KEYS = 1024;
const PEER_MAX_K = 32;

const f = (x: number): UniformField => ({ f32: x });
const b = (x: boolean): number => (x ? 1 : 0);

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

  /** Compile (cached) and dispatch one entry point of a kernel file over `threads` threads of 256-wide groups. */
  run(
    name: string,
    src: string,
    entry: string,
    uniform: UniformField[],
    buffers: (GpuBuffer | null)[],
    threads: number,
    constants: Record<string, number> = {},
  ): void {
    const k = this.gpu.kernel(name, `${common}\n${src}`, constants, entry);
    this.gpu.dispatch(k, uniform, buffers, this.gpu.grid(threads, 256));
  }

  /** One workgroup per row (row = wid.x + wid.y·num_workgroups.x). */
  runRows(
    name: string,
    src: string,
    entry: string,
    uniform: UniformField[],
    buffers: (GpuBuffer | null)[],
    rows: number,
  ): void {
    const k = this.gpu.kernel(name, `${common}\n${src}`, {}, entry);
    this.gpu.dispatch(k, uniform, buffers, this.gpu.grid(rows, 1));
  }

  /** A fixed number of workgroups (single-workgroup reductions, one workgroup per group/column). */
  runGroups(
    name: string,
    src: string,
    entry: string,
    uniform: UniformField[],
    buffers: (GpuBuffer | null)[],
    groups: number,
  ): void {
    const k = this.gpu.kernel(name, `${common}\n${src}`, {}, entry);
    if (groups > this.gpu.limits.maxComputeWorkgroupsPerDimension) {
      throw new Error(
        `webgpu ${name}: ${groups} workgroups exceed the per-dimension limit ${this.gpu.limits.maxComputeWorkgroupsPerDimension}`,
      );
    }
    this.gpu.dispatch(k, uniform, buffers, [groups]);
  }

  /** Explicit workgroup counts (tiled kernels). */
  runGrid(
    name: string,
    src: string,
    uniform: UniformField[],
    buffers: (GpuBuffer | null)[],
    groups: [number, number, number],
  ): void {
    const k = this.gpu.kernel(name, `${common}\n${src}`, {}, 'main');
    this.gpu.dispatch(k, uniform, buffers, groups);
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

function makeKernels(dev: WebGpuDevice): Kernels {
  const B = dev.buf.bind(dev);
  const i32 = (t: DTensor, n: number, what: string) => dev.buf(t, n, what, 'i32');
  const k: KernelSignatures = {
    // ------------------------------------------------------------------------------------------ memory, elementwise
    fill(x, s) {
      const bits = new Uint32Array(1);
      if (x.dtype === 'f32') new Float32Array(bits.buffer)[0] = s.value;
      else new Int32Array(bits.buffer)[0] = s.value;
      dev.run('fill', fillSrc, 'main', [s.n, bits[0]], [dev.buf(x, s.n, 'fill x', x.dtype)], s.n);
    },
    copyBlock(dst, src, s) {
      if (dst.dtype !== src.dtype)
        throw new Error(`webgpu copyBlock: dst is ${dst.dtype}, src is ${src.dtype}; expected the same dtype`);
      if (s.accumulate && dst.dtype !== 'f32') throw new Error('webgpu copyBlock: accumulate needs f32 tensors');
      if (s.rows === 0 || s.cols === 0) return;
      const needD = s.dstOffset + (s.rows - 1) * s.dstLd + s.cols,
        needS = s.srcOffset + (s.rows - 1) * s.srcLd + s.cols;
      dev.run(
        'copyBlock',
        copyBlockSrc,
        'main',
        [s.rows, s.cols, s.dstLd, s.srcLd, s.dstOffset, s.srcOffset, b(s.accumulate)],
        [dev.buf(dst, needD, 'copyBlock dst', dst.dtype), dev.buf(src, needS, 'copyBlock src', src.dtype)],
        s.rows * s.cols,
      );
    },
    axpby(y, x, s) {
      dev.run(
        'axpby',
        axpbySrc,
        'main',
        [s.n, f(s.alpha), f(s.beta)],
        [B(y, s.n, 'axpby y'), B(x, s.n, 'axpby x')],
        s.n,
      );
    },
    addBias(y, bias, s) {
      dev.run(
        'addBias',
        addBiasSrc,
        'main',
        [s.rows, s.cols],
        [B(y, s.rows * s.cols, 'addBias y'), B(bias, s.cols, 'addBias bias')],
        s.rows * s.cols,
      );
    },
    colSum(out, x, s) {
      dev.run(
        'colSum',
        colSumSrc,
        'main',
        [s.rows, s.cols],
        [B(out, s.cols, 'colSum out'), B(x, s.rows * s.cols, 'colSum x')],
        s.cols,
      );
    },
    sumSquares(out, x, s) {
      dev.runGroups(
        'sumSquares',
        sumSquaresSrc,
        'main',
        [s.n, b(s.accumulate)],
        [B(out, 1, 'sumSquares out'), B(x, s.n, 'sumSquares x')],
        1,
      );
    },

    // ------------------------------------------------------------------------------------------ matrix products
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
    matmulGrouped(c, a, bm, offsets, s) {
      if (s.P === 0 || s.N === 0) return;
      dev.runGrid(
        'matmulGrouped',
        matmulGroupedSrc,
        [s.P, s.N, s.K, s.G, b(s.transB), b(s.accumulate)],
        [
          B(c, s.P * s.N, 'matmulGrouped C'),
          B(a, s.P * s.K, 'matmulGrouped A'),
          B(bm, s.G * s.N * s.K, 'matmulGrouped B'),
          i32(offsets, s.G + 1, 'matmulGrouped offsets'),
        ],
        [Math.ceil(s.N / 64), Math.ceil(s.P / 64), 1],
      );
    },
    matmulGroupedTN(db, dc, a, offsets, s) {
      if (s.N === 0 || s.K === 0 || s.G === 0) return;
      dev.runGrid(
        'matmulGroupedTN',
        matmulGroupedTNSrc,
        [s.P, s.N, s.K, s.G],
        [
          B(db, s.G * s.N * s.K, 'matmulGroupedTN dB'),
          B(dc, s.P * s.N, 'matmulGroupedTN dC'),
          B(a, s.P * s.K, 'matmulGroupedTN A'),
          i32(offsets, s.G + 1, 'matmulGroupedTN offsets'),
        ],
        [Math.ceil(s.K / 64), Math.ceil(s.N / 64), s.G],
      );
    },

    // ------------------------------------------------------------------------------------------ activations, TopK
    activation(y, x, s) {
      dev.run(
        'activation',
        activationSrc,
        'main',
        [s.n, ACT_CODES[s.kind]],
        [B(y, s.n, 'activation y'), B(x, s.n, 'activation x')],
        s.n,
      );
    },
    activationBackward(dx, dy, x, s) {
      dev.run(
        'activationBackward',
        activationBackwardSrc,
        'main',
        [s.n, ACT_CODES[s.kind]],
        [B(dx, s.n, 'activationBackward dx'), B(dy, s.n, 'activationBackward dy'), B(x, s.n, 'activationBackward x')],
        s.n,
      );
    },
    swiglu(h, g, u, s) {
      dev.run(
        'swiglu',
        swigluSrc,
        'main',
        [s.n],
        [B(h, s.n, 'swiglu h'), B(g, s.n, 'swiglu g'), B(u, s.n, 'swiglu u')],
        s.n,
      );
    },
    swigluBackward(dg, du, dh, g, u, s) {
      dev.run(
        'swigluBackward',
        swigluBackwardSrc,
        'main',
        [s.n],
        [
          B(dg, s.n, 'swigluBackward dg'),
          B(du, s.n, 'swigluBackward du'),
          B(dh, s.n, 'swigluBackward dh'),
          B(g, s.n, 'swigluBackward g'),
          B(u, s.n, 'swigluBackward u'),
        ],
        s.n,
      );
    },
    thresholdTopkMask(mask, x, s) {
      dev.run(
        'thresholdTopkMask',
        thresholdTopkMaskSrc,
        'main',
        [s.rows, s.n, s.k],
        [i32(mask, s.rows * s.n, 'thresholdTopkMask mask'), B(x, s.rows * s.n, 'thresholdTopkMask x')],
        s.rows * s.n,
      );
    },
    maskScale(y, x, mask, s) {
      const yb = B(y, s.n, 'maskScale y'),
        mb = i32(mask, s.n, 'maskScale mask');
      // WebGPU forbids binding one buffer both writable and read-only in a dispatch: the aliased call has its own entry.
      if (y === x) dev.run('maskScale', maskScaleSrc, 'inplace', [s.n, f(s.alpha)], [yb, null, mb], s.n);
      else dev.run('maskScale', maskScaleSrc, 'main', [s.n, f(s.alpha)], [yb, B(x, s.n, 'maskScale x'), mb], s.n);
    },

    // ------------------------------------------------------------------------------------------ softmax, top-k
    softmaxRows(y, x, s) {
      dev.runRows(
        'softmaxRows',
        softmaxRowsSrc,
        'main',
        [s.rows, s.n],
        [B(y, s.rows * s.n, 'softmaxRows y'), B(x, s.rows * s.n, 'softmaxRows x')],
        s.rows,
      );
    },
    softmaxBackward(dx, y, dy, s) {
      const n = s.rows * s.n;
      dev.runRows(
        'softmaxBackward',
        softmaxBackwardSrc,
        'main',
        [s.rows, s.n],
        [B(dx, n, 'softmaxBackward dx'), B(y, n, 'softmaxBackward y'), B(dy, n, 'softmaxBackward dy')],
        s.rows,
      );
    },
    topkRows(idx, val, x, s) {
      if (s.k > s.n) throw new Error(`webgpu topkRows: k = ${s.k} exceeds the row length n = ${s.n}`);
      dev.run(
        'topkRows',
        topkRowsSrc,
        'main',
        [s.rows, s.n, s.k],
        [
          i32(idx, s.rows * s.k, 'topkRows idx'),
          B(val, s.rows * s.k, 'topkRows val'),
          B(x, s.rows * s.n, 'topkRows x'),
        ],
        s.rows * s.n,
      );
    },
    topkRowsBackward(dx, dval, idx, s) {
      dev.run(
        'topkRowsBackward',
        topkRowsBackwardSrc,
        'main',
        [s.rows, s.n, s.k],
        [
          B(dx, s.rows * s.n, 'topkRowsBackward dx'),
          B(dval, s.rows * s.k, 'topkRowsBackward dval'),
          i32(idx, s.rows * s.k, 'topkRowsBackward idx'),
        ],
        s.rows * s.k,
      );
    },

    // ------------------------------------------------------------------------------------------ normalisation
    rmsnorm(y, rstd, x, w, s) {
      const n = s.rows * s.d;
      dev.runRows(
        'rmsnorm',
        rmsnormSrc,
        'main',
        [s.rows, s.d, f(s.eps)],
        [B(y, n, 'rmsnorm y'), B(rstd, s.rows, 'rmsnorm rstd'), B(x, n, 'rmsnorm x'), B(w, s.d, 'rmsnorm w')],
        s.rows,
      );
    },
    rmsnormBackward(dx, dw, dy, x, w, rstd, s) {
      const n = s.rows * s.d;
      const bufs = [
        B(dx, n, 'rmsnormBackward dx'),
        B(dw, s.d, 'rmsnormBackward dw'),
        B(dy, n, 'rmsnormBackward dy'),
        B(x, n, 'rmsnormBackward x'),
        B(w, s.d, 'rmsnormBackward w'),
        B(rstd, s.rows, 'rmsnormBackward rstd'),
      ];
      dev.runRows(
        'rmsnormBackward',
        rmsnormBackwardSrc,
        'main',
        [s.rows, s.d],
        [bufs[0], null, bufs[2], bufs[3], bufs[4], bufs[5]],
        s.rows,
      );
      dev.run(
        'rmsnormBackward',
        rmsnormBackwardSrc,
        'dweight',
        [s.rows, s.d],
        [null, bufs[1], bufs[2], bufs[3], null, bufs[5]],
        s.d,
      );
    },
    groupStats(mean, variance, x, s) {
      dev.runGroups(
        'groupStats',
        groupStatsSrc,
        'main',
        [s.outer, s.groups, s.inner],
        [
          B(mean, s.groups, 'groupStats mean'),
          B(variance, s.groups, 'groupStats variance'),
          B(x, s.outer * s.groups * s.inner, 'groupStats x'),
        ],
        s.groups,
      );
    },
    batchnorm(y, x, mean, variance, gamma, beta, s) {
      const n = s.rows * s.cols;
      dev.run(
        'batchnorm',
        batchnormSrc,
        'main',
        [s.rows, s.cols, f(s.eps)],
        [
          B(y, n, 'batchnorm y'),
          B(x, n, 'batchnorm x'),
          B(mean, s.cols, 'batchnorm mean'),
          B(variance, s.cols, 'batchnorm variance'),
          B(gamma, s.cols, 'batchnorm gamma'),
          B(beta, s.cols, 'batchnorm beta'),
        ],
        n,
      );
    },
    batchnormBackward(dx, dgamma, dbeta, dy, x, mean, variance, gamma, s) {
      const n = s.rows * s.cols;
      dev.runGroups(
        'batchnormBackward',
        batchnormBackwardSrc,
        'main',
        [s.rows, s.cols, f(s.eps), b(s.train)],
        [
          B(dx, n, 'batchnormBackward dx'),
          B(dgamma, s.cols, 'batchnormBackward dgamma'),
          B(dbeta, s.cols, 'batchnormBackward dbeta'),
          B(dy, n, 'batchnormBackward dy'),
          B(x, n, 'batchnormBackward x'),
          B(mean, s.cols, 'batchnormBackward mean'),
          B(variance, s.cols, 'batchnormBackward variance'),
          B(gamma, s.cols, 'batchnormBackward gamma'),
        ],
        s.cols,
      );
    },
    runningStatsUpdate(runMean, runVar, mean, variance, s) {
      dev.run(
        'runningStatsUpdate',
        runningStatsUpdateSrc,
        'main',
        [s.groups, s.count, f(s.momentum)],
        [
          B(runMean, s.groups, 'runningStatsUpdate runMean'),
          B(runVar, s.groups, 'runningStatsUpdate runVar'),
          B(mean, s.groups, 'runningStatsUpdate mean'),
          B(variance, s.groups, 'runningStatsUpdate variance'),
        ],
        s.groups,
      );
    },

    // ------------------------------------------------------------------------------------------ Monet
    monetRoute(g, mask, z, mean, variance, s) {
      const n = s.T * s.H * s.E;
      dev.runRows(
        'monetRoute',
        monetRouteSrc,
        'main',
        [s.T, s.H, s.E, f(s.sigma), f(s.eps)],
        [
          B(g, n, 'monetRoute g'),
          i32(mask, n, 'monetRoute mask'),
          B(z, n, 'monetRoute z'),
          B(mean, s.H, 'monetRoute mean'),
          B(variance, s.H, 'monetRoute variance'),
        ],
        s.T * s.H,
      );
    },
    monetUnifLoss(loss, g, s) {
      dev.runGroups(
        'monetUnifLoss',
        monetUnifLossSrc,
        'main',
        [s.T, s.H, s.E, f(s.eps), f(s.scale)],
        [B(loss, 1, 'monetUnifLoss loss'), B(g, s.T * s.H * s.E, 'monetUnifLoss g')],
        1,
      );
    },
    monetUnifBackward(dg, g, s) {
      const n = s.T * s.H * s.E;
      dev.run(
        'monetUnifBackward',
        monetUnifBackwardSrc,
        'main',
        [s.T, s.H, s.E, f(s.eps), f(s.scale)],
        [B(dg, n, 'monetUnifBackward dg'), B(g, n, 'monetUnifBackward g')],
        s.H * s.E,
      );
    },
    monetAmbLoss(loss, g, s) {
      dev.runGroups(
        'monetAmbLoss',
        monetAmbLossSrc,
        'main',
        [s.T, s.H, s.E, f(s.scale)],
        [B(loss, 1, 'monetAmbLoss loss'), B(g, s.T * s.H * s.E, 'monetAmbLoss g')],
        1,
      );
    },
    monetAmbBackward(dg, g, s) {
      const n = s.T * s.H * s.E;
      dev.run(
        'monetAmbBackward',
        monetAmbBackwardSrc,
        'main',
        [s.T, s.H, s.E, f(s.scale)],
        [B(dg, n, 'monetAmbBackward dg'), B(g, n, 'monetAmbBackward g')],
        s.T * s.H,
      );
    },
    headSum(G, g, s) {
      dev.run(
        'headSum',
        headSumSrc,
        'main',
        [s.T, s.H, s.E],
        [B(G, s.T * s.E, 'headSum G'), B(g, s.T * s.H * s.E, 'headSum g')],
        s.T * s.E,
      );
    },
    headBroadcastAdd(dg, dG, s) {
      dev.run(
        'headBroadcastAdd',
        headBroadcastAddSrc,
        'main',
        [s.T, s.H, s.E],
        [B(dg, s.T * s.H * s.E, 'headBroadcastAdd dg'), B(dG, s.T * s.E, 'headBroadcastAdd dG')],
        s.T * s.H * s.E,
      );
    },
    monetHdMix(y, cc, a, g1, g2, s) {
      const { T, H, E, m } = s;
      const u = [T, H, E, m];
      const bufs = [
        B(y, T * E * m, 'monetHdMix y'),
        B(cc, T * H * m, 'monetHdMix cc'),
        B(a, T * E * m, 'monetHdMix a'),
        B(g1, T * H * E, 'monetHdMix g1'),
        B(g2, T * H * E, 'monetHdMix g2'),
      ];
      dev.run('monetHdMix', monetHdMixSrc, 'main', u, [null, bufs[1], bufs[2], bufs[3], null], T * H * m);
      dev.run('monetHdMix', monetHdMixSrc, 'spread', u, [bufs[0], bufs[1], null, null, bufs[4]], T * E * m);
    },
    monetHdMixBackward(da, dg1, dg2, dy, a, g1, g2, cc, s) {
      const { T, H, E, m } = s;
      const u = [T, H, E, m];
      const w = 'monetHdMixBackward';
      const bDa = B(da, T * E * m, `${w} da`),
        bDg1 = B(dg1, T * H * E, `${w} dg1`),
        bDg2 = B(dg2, T * H * E, `${w} dg2`);
      const bDy = B(dy, T * E * m, `${w} dy`),
        bA = B(a, T * E * m, `${w} a`),
        bG1 = B(g1, T * H * E, `${w} g1`);
      const bG2 = B(g2, T * H * E, `${w} g2`),
        bCc = B(cc, T * H * m, `${w} cc`);
      const dcc = dev.scratch(T * H * m, `${w} dcc`);
      dev.run(w, monetHdMixBackwardSrc, 'main', u, [null, null, bDg2, bDy, null, null, null, bCc, null], T * H * E);
      dev.run(w, monetHdMixBackwardSrc, 'dcc_pass', u, [null, null, null, bDy, null, null, bG2, null, dcc], T * H * m);
      dev.run(w, monetHdMixBackwardSrc, 'dg1_pass', u, [null, bDg1, null, null, bA, null, null, null, dcc], T * H * E);
      dev.run(w, monetHdMixBackwardSrc, 'da_pass', u, [bDa, null, null, null, null, bG1, null, null, dcc], T * E * m);
      dev.gpu.free(dcc);
    },
    monetVdMix(h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, s) {
      const { T, H, E, m } = s;
      const u = [T, H, E, m];
      const w = 'monetVdMix';
      const tem = T * E * m,
        thm = T * H * m,
        the = T * H * E;
      const bufs = [
        B(h11, tem, `${w} h11`),
        B(h12, tem, `${w} h12`),
        B(h21, tem, `${w} h21`),
        B(h22, tem, `${w} h22`),
        B(c1, thm, `${w} c1`),
        B(c2, thm, `${w} c2`),
        B(a1, tem, `${w} a1`),
        B(a2, tem, `${w} a2`),
        B(g1, the, `${w} g1`),
        B(g2, the, `${w} g2`),
        B(G1, T * E, `${w} G1`),
        B(G2, T * E, `${w} G2`),
      ];
      const [b11, b12, b21, b22, bC1, bC2, bA1, bA2, bG1, bG2, bS1, bS2] = bufs;
      // Three passes of at most 6 storage buffers each (WebGPU guarantees 8 per stage; all twelve at once would not fit).
      dev.run(w, monetVdMixSrc, 'main', u, [null, null, null, null, bC1, bC2, bA1, bA2, bG1, bG2, null, null], thm);
      dev.run(w, monetVdMixSrc, 'straight', u, [b11, null, null, b22, null, null, bA1, bA2, null, null, bS1, bS2], tem);
      dev.run(w, monetVdMixSrc, 'cross', u, [null, b12, b21, null, bC1, bC2, null, null, bG1, bG2, null, null], tem);
    },
    monetVdMixBackward(da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, s) {
      const { T, H, E, m } = s;
      const u = [T, H, E, m];
      const w = 'monetVdMixBackward';
      const tem = T * E * m,
        thm = T * H * m,
        the = T * H * E;
      const [bDa1, bDa2, bDg1, bDg2] = [
        B(da1, tem, `${w} da1`),
        B(da2, tem, `${w} da2`),
        B(dg1, the, `${w} dg1`),
        B(dg2, the, `${w} dg2`),
      ];
      const [b11, b12, b21, b22] = [
        B(dh11, tem, `${w} dh11`),
        B(dh12, tem, `${w} dh12`),
        B(dh21, tem, `${w} dh21`),
        B(dh22, tem, `${w} dh22`),
      ];
      const [bA1, bA2, bG1, bG2] = [
        B(a1, tem, `${w} a1`),
        B(a2, tem, `${w} a2`),
        B(g1, the, `${w} g1`),
        B(g2, the, `${w} g2`),
      ];
      const [bS1, bS2, bC1, bC2] = [
        B(G1, T * E, `${w} G1`),
        B(G2, T * E, `${w} G2`),
        B(c1, thm, `${w} c1`),
        B(c2, thm, `${w} c2`),
      ];
      const dc = dev.scratch(2 * thm, `${w} dc`);
      dev.run(
        w,
        monetVdMixBackwardSrc,
        'main',
        u,
        [null, null, null, null, null, b12, b21, null, null, null, bG1, bG2, null, null, null, null, dc],
        thm,
      );
      // One pass per router half for dg and da, so that no pass uses more than 6 storage buffers (WebGPU: 8 per stage).
      dev.run(
        w,
        monetVdMixBackwardSrc,
        'dg1_pass',
        u,
        [null, null, bDg1, null, b11, b12, null, null, bA1, null, null, null, null, null, null, bC2, dc],
        the,
      );
      dev.run(
        w,
        monetVdMixBackwardSrc,
        'dg2_pass',
        u,
        [null, null, null, bDg2, null, null, b21, b22, null, bA2, null, null, null, null, bC1, null, dc],
        the,
      );
      dev.run(
        w,
        monetVdMixBackwardSrc,
        'da1_pass',
        u,
        [bDa1, null, null, null, b11, null, null, null, null, null, bG1, null, bS1, null, null, null, dc],
        tem,
      );
      dev.run(
        w,
        monetVdMixBackwardSrc,
        'da2_pass',
        u,
        [null, bDa2, null, null, null, null, null, b22, null, null, null, bG2, null, bS2, null, null, dc],
        tem,
      );
      dev.gpu.free(dc);
    },

    // ------------------------------------------------------------------------------------------ PEER
    peerRoute(ids, scores, q, subKeys, s) {
      const { T, H, dk, n, k } = s;
      if (n > PEER_MAX_KEYS || k > PEER_MAX_K || k > n) {
        throw new Error(
          `webgpu peerRoute: supports n ≤ ${PEER_MAX_KEYS} sub-keys per side and k ≤ min(${PEER_MAX_K}, n); found n = ${n}, k = ${k}`,
        );
      }
      dev.runRows(
        'peerRoute',
        peerRouteSrc,
        'main',
        [T, H, dk, n, k],
        [
          i32(ids, T * H * k, 'peerRoute ids'),
          B(scores, T * H * k, 'peerRoute scores'),
          B(q, T * H * dk, 'peerRoute q'),
          B(subKeys, 2 * n * (dk / 2), 'peerRoute subKeys'),
        ],
        T * H,
      );
    },
    peerRouteBackward(dq, dSubKeys, dscores, q, subKeys, ids, s) {
      const { T, H, dk, n, k } = s;
      const u = [T, H, dk, n, k];
      const w = 'peerRouteBackward';
      const bufs = [
        B(dq, T * H * dk, `${w} dq`),
        B(dSubKeys, 2 * n * (dk / 2), `${w} dSubKeys`),
        B(dscores, T * H * k, `${w} dscores`),
        B(q, T * H * dk, `${w} q`),
        B(subKeys, 2 * n * (dk / 2), `${w} subKeys`),
        i32(ids, T * H * k, `${w} ids`),
      ];
      dev.run(w, peerRouteBackwardSrc, 'main', u, [bufs[0], null, bufs[2], null, bufs[4], bufs[5]], T * H * dk);
      dev.run(w, peerRouteBackwardSrc, 'dkeys', u, [null, bufs[1], bufs[2], bufs[3], null, bufs[5]], T * H * k * dk);
    },
    peerExperts(y, hpre, x, wDown, wUp, ids, wt, s) {
      const { T, H, k, d } = s;
      const u = [T, H, k, d, ACT_CODES[s.kind]];
      const w = 'peerExperts';
      const bufs = [
        B(y, T * d, `${w} y`),
        B(hpre, T * H * k, `${w} hpre`),
        B(x, T * d, `${w} x`),
        B(wDown, 1, `${w} wDown`),
        B(wUp, 1, `${w} wUp`),
        i32(ids, T * H * k, `${w} ids`),
        B(wt, T * H * k, `${w} w`),
      ];
      dev.run(w, peerExpertsSrc, 'main', u, [null, bufs[1], bufs[2], bufs[3], null, bufs[5], null], T * H * k);
      dev.run(w, peerExpertsSrc, 'combine', u, [bufs[0], bufs[1], null, null, bufs[4], bufs[5], bufs[6]], T * d);
    },
    peerExpertsBackward(dx, dwDown, dwUp, dw, dy, x, wDown, wUp, ids, wt, hpre, s) {
      const { T, H, k, d } = s;
      const u = [T, H, k, d, ACT_CODES[s.kind]];
      const w = 'peerExpertsBackward';
      const thk = T * H * k;
      const bDx = B(dx, T * d, `${w} dx`),
        bDwDown = B(dwDown, wDown.length, `${w} dwDown`),
        bDwUp = B(dwUp, wUp.length, `${w} dwUp`);
      const bDw = B(dw, thk, `${w} dw`),
        bDy = B(dy, T * d, `${w} dy`),
        bX = B(x, T * d, `${w} x`);
      const bWDown = B(wDown, 1, `${w} wDown`),
        bWUp = B(wUp, 1, `${w} wUp`),
        bIds = i32(ids, thk, `${w} ids`);
      const bW = B(wt, thk, `${w} w`),
        bH = B(hpre, thk, `${w} hpre`);
      const dh = dev.scratch(thk, `${w} dh`);
      dev.run(
        w,
        peerExpertsBackwardSrc,
        'main',
        u,
        [null, null, null, bDw, bDy, null, null, bWUp, bIds, bW, bH, dh],
        thk,
      );
      dev.run(
        w,
        peerExpertsBackwardSrc,
        'dinput',
        u,
        [bDx, null, null, null, null, null, bWDown, null, bIds, null, null, dh],
        T * d,
      );
      dev.run(
        w,
        peerExpertsBackwardSrc,
        'dtables',
        u,
        [null, bDwDown, bDwUp, null, bDy, bX, null, null, bIds, bW, bH, dh],
        thk * d,
      );
      dev.gpu.free(dh);
    },

    // ------------------------------------------------------------------------------------------ SMoE
    moeSort(order, pos, offsets, expertIdx, s) {
      const u = [s.P, s.E];
      const bufs = [
        i32(order, s.P, 'moeSort order'),
        i32(pos, s.P, 'moeSort pos'),
        i32(offsets, s.E + 1, 'moeSort offsets'),
        i32(expertIdx, s.P, 'moeSort expertIdx'),
      ];
      dev.run('moeSort', moeSortSrc, 'main', u, [null, null, bufs[2], bufs[3]], s.E + 1);
      dev.run('moeSort', moeSortSrc, 'place', u, bufs, s.P);
    },
    moeDispatch(xs, x, order, s) {
      dev.run(
        'moeDispatch',
        moeDispatchSrc,
        'main',
        [s.P, s.k, s.d],
        [B(xs, s.P * s.d, 'moeDispatch xs'), B(x, 1, 'moeDispatch x'), i32(order, s.P, 'moeDispatch order')],
        s.P * s.d,
      );
    },
    moeDispatchBackward(dx, dxs, pos, s) {
      dev.run(
        'moeDispatchBackward',
        moeDispatchBackwardSrc,
        'main',
        [s.T, s.k, s.d],
        [
          B(dx, s.T * s.d, 'moeDispatchBackward dx'),
          B(dxs, s.T * s.k * s.d, 'moeDispatchBackward dxs'),
          i32(pos, s.T * s.k, 'moeDispatchBackward pos'),
        ],
        s.T * s.d,
      );
    },
    moeCombine(y, ys, wt, pos, s) {
      dev.run(
        'moeCombine',
        moeCombineSrc,
        'main',
        [s.T, s.k, s.d],
        [
          B(y, s.T * s.d, 'moeCombine y'),
          B(ys, s.T * s.k * s.d, 'moeCombine ys'),
          B(wt, s.T * s.k, 'moeCombine w'),
          i32(pos, s.T * s.k, 'moeCombine pos'),
        ],
        s.T * s.d,
      );
    },
    moeCombineBackward(dys, dw, dy, ys, wt, pos, s) {
      const P = s.T * s.k;
      const u = [s.T, s.k, s.d];
      const w = 'moeCombineBackward';
      const bufs = [
        B(dys, P * s.d, `${w} dys`),
        B(dw, P, `${w} dw`),
        B(dy, s.T * s.d, `${w} dy`),
        B(ys, P * s.d, `${w} ys`),
        B(wt, P, `${w} w`),
        i32(pos, P, `${w} pos`),
      ];
      dev.run(w, moeCombineBackwardSrc, 'main', u, [bufs[0], null, bufs[2], null, bufs[4], bufs[5]], P * s.d);
      dev.run(w, moeCombineBackwardSrc, 'dweight', u, [null, bufs[1], bufs[2], bufs[3], null, bufs[5]], P);
    },
    smoeAux(lossBalance, lossZ, probs, lse, z, expertIdx, s) {
      const u = [s.T, s.E, s.k, f(s.scale)];
      const w = 'smoeAux';
      const bufs = [
        B(lossBalance, 1, `${w} lossBalance`),
        B(lossZ, 1, `${w} lossZ`),
        B(probs, s.T * s.E, `${w} probs`),
        B(lse, s.T, `${w} lse`),
        B(z, s.T * s.E, `${w} z`),
        i32(expertIdx, s.T * s.k, `${w} expertIdx`),
      ];
      dev.run(w, smoeAuxSrc, 'main', u, [null, null, bufs[2], bufs[3], bufs[4], null], s.T);
      dev.runGroups(w, smoeAuxSrc, 'losses', u, [bufs[0], bufs[1], bufs[2], bufs[3], null, bufs[5]], 1);
    },
    smoeAuxBackward(dz, probs, lse, expertIdx, s) {
      const u = [s.T, s.E, s.k, f(s.coefBalance), f(s.coefZ)];
      const w = 'smoeAuxBackward';
      const fr = dev.scratch(s.E, `${w} f`);
      const bufs = [
        B(dz, s.T * s.E, `${w} dz`),
        B(probs, s.T * s.E, `${w} probs`),
        B(lse, s.T, `${w} lse`),
        i32(expertIdx, s.T * s.k, `${w} expertIdx`),
      ];
      dev.run(w, smoeAuxBackwardSrc, 'main', u, [null, null, null, bufs[3], fr], s.E);
      dev.run(w, smoeAuxBackwardSrc, 'rows', u, [bufs[0], bufs[1], bufs[2], null, fr], s.T);
      dev.gpu.free(fr);
    },

    // ------------------------------------------------------------------------------------------ LM
    widenBf16(dst, packed, s) {
      if (s.n === 0) return;
      dev.run(
        'widenBf16',
        widenBf16Src,
        'main',
        [s.n],
        [B(dst, s.n, 'widenBf16 dst'), i32(packed, Math.ceil(s.n / 2), 'widenBf16 packed')],
        s.n,
      );
    },
    gatherRows(dst, table, idx, s) {
      dev.run(
        'gatherRows',
        gatherRowsSrc,
        'main',
        [s.rows, s.cols],
        [
          B(dst, s.rows * s.cols, 'gatherRows dst'),
          B(table, s.cols, 'gatherRows table'),
          i32(idx, s.rows, 'gatherRows idx'),
        ],
        s.rows * s.cols,
      );
    },
    scatterAddRows(dst, src, idx, s) {
      dev.run(
        'scatterAddRows',
        scatterAddRowsSrc,
        'main',
        [s.rows, s.cols],
        [
          B(dst, s.cols, 'scatterAddRows dst'),
          B(src, s.rows * s.cols, 'scatterAddRows src'),
          i32(idx, s.rows, 'scatterAddRows idx'),
        ],
        s.rows * s.cols,
      );
    },
    rope(y, x, s) {
      const n = s.B * s.S * s.heads * s.hd;
      if (n === 0) return;
      dev.run(
        'rope',
        ropeSrc,
        'main',
        [s.B, s.S, s.heads, s.hd],
        [B(y, n, 'rope y'), B(x, n, 'rope x'), dev.ropeTable(s.S, s.hd, s.theta)],
        n / 2,
        { SIGN: 1, ACCUMULATE: 0 },
      );
    },
    ropeBackward(dx, dy, s) {
      const n = s.B * s.S * s.heads * s.hd;
      if (n === 0) return;
      dev.run(
        'rope',
        ropeSrc,
        'main',
        [s.B, s.S, s.heads, s.hd],
        [B(dx, n, 'ropeBackward dx'), B(dy, n, 'ropeBackward dy'), dev.ropeTable(s.S, s.hd, s.theta)],
        n / 2,
        { SIGN: -1, ACCUMULATE: 1 },
      );
    },
    attention(out, probs, q, kk, v, s) {
      const { B: Bn, S, nH, nKV, hd } = s;
      const u = [Bn, S, nH, nKV, hd];
      const w = 'attention';
      const bufs = [
        B(out, Bn * S * nH * hd, `${w} out`),
        B(probs, Bn * nH * S * S, `${w} probs`),
        B(q, Bn * S * nH * hd, `${w} q`),
        B(kk, Bn * S * nKV * hd, `${w} k`),
        B(v, Bn * S * nKV * hd, `${w} v`),
      ];
      dev.run(w, attentionSrc, 'main', u, [null, bufs[1], bufs[2], bufs[3], null], Bn * nH * S);
      dev.run(w, attentionSrc, 'mix_values', u, [bufs[0], bufs[1], null, null, bufs[4]], Bn * S * nH * hd);
    },
    attentionBackward(dq, dk, dv, dout, q, kk, v, probs, s) {
      const { B: Bn, S, nH, nKV, hd } = s;
      const u = [Bn, S, nH, nKV, hd];
      const w = 'attentionBackward';
      const nq = Bn * S * nH * hd,
        nk = Bn * S * nKV * hd,
        np = Bn * nH * S * S;
      const bDq = B(dq, nq, `${w} dq`),
        bDk = B(dk, nk, `${w} dk`),
        bDv = B(dv, nk, `${w} dv`),
        bDo = B(dout, nq, `${w} dout`);
      const bQ = B(q, nq, `${w} q`),
        bK = B(kk, nk, `${w} k`),
        bV = B(v, nk, `${w} v`),
        bP = B(probs, np, `${w} probs`);
      const dS = dev.scratch(np, `${w} dS`);
      dev.run(w, attentionBackwardSrc, 'main', u, [null, null, null, bDo, null, null, bV, bP, dS], Bn * nH * S);
      dev.run(w, attentionBackwardSrc, 'dquery', u, [bDq, null, null, null, null, bK, null, null, dS], nq);
      dev.run(w, attentionBackwardSrc, 'dkv', u, [null, bDk, bDv, bDo, bQ, null, null, bP, dS], nk);
      dev.gpu.free(dS);
    },
    crossEntropy(loss, probs, logits, tokens, s) {
      const rows = s.B * s.S;
      const u = [s.B, s.S, s.V, f(s.scale)];
      const w = 'crossEntropy';
      const bufs = [
        B(loss, 1, `${w} loss`),
        B(probs, rows * s.V, `${w} probs`),
        B(logits, rows * s.V, `${w} logits`),
        i32(tokens, rows, `${w} tokens`),
      ];
      dev.runRows(w, crossEntropySrc, 'main', u, [null, bufs[1], bufs[2], null], rows);
      dev.runGroups(w, crossEntropySrc, 'total', u, [bufs[0], bufs[1], null, bufs[3]], 1);
    },
    crossEntropyBackward(dlogits, probs, tokens, s) {
      const n = s.B * s.S * s.V;
      dev.run(
        'crossEntropyBackward',
        crossEntropyBackwardSrc,
        'main',
        [s.B, s.S, s.V, f(s.scale)],
        [
          B(dlogits, n, 'crossEntropyBackward dlogits'),
          B(probs, n, 'crossEntropyBackward probs'),
          i32(tokens, s.B * s.S, 'crossEntropyBackward tokens'),
        ],
        n,
      );
    },

    // ------------------------------------------------------------------------------------------ optimiser
    stepGuard(ctl, s) {
      dev.runGroups(
        'stepGuard',
        stepGuardSrc,
        'main',
        [f(s.accum), f(s.clip), f(s.step)],
        [B(ctl, STEP.size, 'stepGuard ctl')],
        1,
      );
    },
    copyIf(dst, src, cond, s) {
      if (s.n === 0) return;
      dev.run(
        'copyIf',
        copyIfSrc,
        'main',
        [s.n, s.at],
        [B(dst, s.n, 'copyIf dst'), B(src, s.n, 'copyIf src'), B(cond, s.at + 1, 'copyIf cond')],
        s.n,
      );
    },
    adamw(p, g, m, v, ctl, s) {
      const bc1 = 1 - Math.pow(s.beta1, s.step),
        bc2 = 1 - Math.pow(s.beta2, s.step);
      dev.run(
        'adamw',
        adamwSrc,
        'main',
        [s.n, f(s.lr), f(s.beta1), f(s.beta2), f(s.eps), f(s.weightDecay), f(bc1), f(bc2), f(s.gradScale)],
        [
          B(p, s.n, 'adamw p'),
          B(g, s.n, 'adamw g'),
          B(m, s.n, 'adamw m'),
          B(v, s.n, 'adamw v'),
          B(ctl, STEP.size, 'adamw ctl'),
        ],
        s.n,
      );
    },
  };
  return k;
}

/** Open a GPU and wrap it as a Device (throws NoAdapterError, with the reason, where there is none). */
export async function createWebGpuDevice(opts: OpenOptions = {}): Promise<WebGpuDevice> {
  return new WebGpuDevice(await openGpu(opts));
}
