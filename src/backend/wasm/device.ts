// The WASM device: the AssemblyScript kernels of asm/ (built to asm/build/*.wasm) behind the Device interface.
//
// Free of Node-only APIs, so that it bundles for browsers (esbuild): it is given the module bytes. In Node,
// src/backend/wasm/node.ts reads them from asm/build/; in a browser, fetch the two .wasm files and call
// createWasmDeviceFromBytes.
//
// Memory: every tensor lives in the module's linear memory. This file owns everything above the module's
// __heap_base with a small allocator (64-byte aligned blocks, one free list per block size, memory.grow when
// full). Growing memory detaches old ArrayBuffer views, so views are always taken fresh from memory.buffer.
// Kernels run synchronously when called (nothing is queued), so `read` only copies.
// Kernels that need temporary space get a scratch block sized by this file (see `scratch` below).

import type { HostMemoryDevice } from '../device.ts';
import type { ActKind, DTensor, DType, F32, I32, Kernels } from '../kernels.ts';

/** A WASM device tensor: a block of linear memory. */
export interface WasmTensor<D extends DType = DType> extends DTensor<D> {
  readonly ptr: number;
  readonly bytes: number; // allocated size (≥ 4·length, a multiple of 64)
  freed: boolean;
}

/** The module's exports (asm/index.ts). Pointers and sizes are numbers; booleans are 0/1. */
interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedSimd(): number;
  gemmScratchFloats(N: number): number;
  attentionScratchFloats(S: number, hd: number): number;
  [kernel: string]: unknown;
}

const ACT: Record<ActKind, number> = { relu: 0, relu2: 1, gelu: 2, silu: 3 };
const ALIGN = 64;

export interface WasmModuleBytes {
  /** The plain WebAssembly SIMD build (asm/build/kernels.wasm). */
  plain: Uint8Array | ArrayBuffer;
  /** The relaxed-SIMD build (asm/build/kernels-relaxed.wasm), used when this engine validates it. */
  relaxed?: Uint8Array | ArrayBuffer;
}

class WasmDevice implements HostMemoryDevice {
  readonly name: string;
  readonly kernels: Kernels;
  private readonly mem: WebAssembly.Memory;
  private top: number; // first never-allocated byte
  private readonly freeLists = new Map<number, number[]>();
  private scratchPtr = 0;
  private scratchBytes = 0;
  private disposed = false;

  constructor(
    private readonly ex: Exports,
    relaxed: boolean,
  ) {
    this.name = relaxed ? 'wasm (relaxed-simd)' : 'wasm (simd)';
    this.mem = ex.memory;
    this.top = Math.ceil(ex.heapBase() / ALIGN) * ALIGN;
    this.kernels = makeKernels(ex, (bytes) => this.scratch(bytes));
  }

  /** Raw block allocation (bytes rounded up to the alignment), zero-filled. */
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
            throw new Error(
              `wasm device: cannot grow memory to ${end} bytes (${(e as Error).message}); a wasm32 module holds at most 4 GiB`,
            );
          }
        }
      }
      this.top = end;
    }
    new Uint8Array(this.mem.buffer, ptr, size).fill(0);
    return ptr;
  }

  private freeBytes(ptr: number, bytes: number): void {
    let list = this.freeLists.get(bytes);
    if (!list) this.freeLists.set(bytes, (list = []));
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
    const t: WasmTensor = { dtype, length, ptr: this.allocBytes(bytes), bytes, freed: false };
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
    return w.dtype === 'f32'
      ? new Float32Array(this.mem.buffer, w.ptr, w.length).slice()
      : new Int32Array(this.mem.buffer, w.ptr, w.length).slice();
  }

  writeSync(t: F32, data: Float32Array): void {
    const w = t as unknown as WasmTensor;
    if (w.freed) throw new Error('wasm device write: the tensor was freed');
    if (data.length !== w.length)
      throw new Error(`wasm device write: expected ${w.length} values for the tensor, found ${data.length}`);
    new Float32Array(this.mem.buffer, w.ptr, w.length).set(data);
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
  }
}

/** Bind the exports to the Kernels contract: struct arguments → positional, booleans → 0/1, activations → numbers. */
function makeKernels(ex: Exports, scratch: (bytes: number) => number): Kernels {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const k = ex as unknown as Record<string, (...args: any[]) => void>;
  const p = (t: DTensor): number => {
    const w = t as WasmTensor;
    if (w.freed) throw new Error('wasm kernel: a tensor argument was freed');
    return w.ptr;
  };
  const mmScratch = (N: number) => scratch(4 * ex.gemmScratchFloats(N));
  const b = (v: boolean) => (v ? 1 : 0);
  return {
    fill: (x, s) => (x.dtype === 'i32' ? k.fillI32(p(x), s.n, s.value) : k.fill(p(x), s.n, s.value)),
    copyBlock: (dst, src, s) =>
      k.copyBlock(p(dst), p(src), s.rows, s.cols, s.dstLd, s.srcLd, s.dstOffset, s.srcOffset, b(s.accumulate)),
    axpby: (y, x, s) => k.axpby(p(y), p(x), s.n, s.alpha, s.beta),
    addBias: (y, bias, s) => k.addBias(p(y), p(bias), s.rows, s.cols),
    colSum: (out, x, s) => k.colSum(p(out), p(x), s.rows, s.cols),
    sumSquares: (out, x, s) => k.sumSquares(p(out), p(x), s.n, b(s.accumulate)),
    matmul: (c, a, bb, s) =>
      k.matmul(p(c), p(a), p(bb), s.M, s.N, s.K, b(s.transA), b(s.transB), b(s.accumulate), mmScratch(s.N)),
    matmulGrouped: (c, a, bb, off, s) =>
      k.matmulGrouped(p(c), p(a), p(bb), p(off), s.P, s.N, s.K, s.G, b(s.transB), b(s.accumulate), mmScratch(s.N)),
    matmulGroupedTN: (db, dc, a, off, s) =>
      k.matmulGroupedTN(p(db), p(dc), p(a), p(off), s.P, s.N, s.K, s.G, mmScratch(s.K)),
    activation: (y, x, s) => k.activation(p(y), p(x), s.n, ACT[s.kind]),
    activationBackward: (dx, dy, x, s) => k.activationBackward(p(dx), p(dy), p(x), s.n, ACT[s.kind]),
    swiglu: (h, g, u, s) => k.swiglu(p(h), p(g), p(u), s.n),
    swigluBackward: (dg, du, dh, g, u, s) => k.swigluBackward(p(dg), p(du), p(dh), p(g), p(u), s.n),
    thresholdTopkMask: (mask, x, s) => k.thresholdTopkMask(p(mask), p(x), s.rows, s.n, s.k, scratch(8 * s.k)),
    maskScale: (y, x, mask, s) => k.maskScale(p(y), p(x), p(mask), s.n, s.alpha),
    softmaxRows: (y, x, s) => k.softmaxRows(p(y), p(x), s.rows, s.n),
    softmaxBackward: (dx, y, dy, s) => k.softmaxBackward(p(dx), p(y), p(dy), s.rows, s.n),
    topkRows: (idx, val, x, s) => k.topkRows(p(idx), p(val), p(x), s.rows, s.n, s.k, scratch(8 * s.k)),
    topkRowsBackward: (dx, dval, idx, s) => k.topkRowsBackward(p(dx), p(dval), p(idx), s.rows, s.n, s.k),
    rmsnorm: (y, rstd, x, w, s) => k.rmsnorm(p(y), p(rstd), p(x), p(w), s.rows, s.d, s.eps),
    rmsnormBackward: (dx, dw, dy, x, w, rstd, s) =>
      k.rmsnormBackward(p(dx), p(dw), p(dy), p(x), p(w), p(rstd), s.rows, s.d),
    groupStats: (mean, v, x, s) => k.groupStats(p(mean), p(v), p(x), s.outer, s.groups, s.inner),
    batchnorm: (y, x, mean, v, g, be, s) => k.batchnorm(p(y), p(x), p(mean), p(v), p(g), p(be), s.rows, s.cols, s.eps),
    batchnormBackward: (dx, dg, dbe, dy, x, mean, v, g, s) =>
      k.batchnormBackward(p(dx), p(dg), p(dbe), p(dy), p(x), p(mean), p(v), p(g), s.rows, s.cols, s.eps, b(s.train)),
    runningStatsUpdate: (rm, rv, mean, v, s) =>
      k.runningStatsUpdate(p(rm), p(rv), p(mean), p(v), s.groups, s.count, s.momentum),
    monetRoute: (g, mask, z, mean, v, s) =>
      k.monetRoute(p(g), p(mask), p(z), p(mean), p(v), s.T, s.H, s.E, s.sigma, s.eps),
    monetUnifLoss: (loss, g, s) =>
      k.monetUnifLoss(p(loss), p(g), s.T, s.H, s.E, s.eps, s.scale, scratch(4 * s.H * s.E)),
    monetUnifBackward: (dg, g, s) =>
      k.monetUnifBackward(p(dg), p(g), s.T, s.H, s.E, s.eps, s.scale, scratch(4 * s.H * s.E)),
    monetAmbLoss: (loss, g, s) => k.monetAmbLoss(p(loss), p(g), s.T, s.H, s.E, s.scale),
    monetAmbBackward: (dg, g, s) => k.monetAmbBackward(p(dg), p(g), s.T, s.H, s.E, s.scale),
    headSum: (G, g, s) => k.headSum(p(G), p(g), s.T, s.H, s.E),
    headBroadcastAdd: (dg, dG, s) => k.headBroadcastAdd(p(dg), p(dG), s.T, s.H, s.E),
    monetHdMix: (y, cc, a, g1, g2, s) => k.monetHdMix(p(y), p(cc), p(a), p(g1), p(g2), s.T, s.H, s.E, s.m),
    monetHdMixBackward: (da, dg1, dg2, dy, a, g1, g2, cc, s) =>
      k.monetHdMixBackward(
        p(da),
        p(dg1),
        p(dg2),
        p(dy),
        p(a),
        p(g1),
        p(g2),
        p(cc),
        s.T,
        s.H,
        s.E,
        s.m,
        scratch(4 * s.H * s.m),
      ),
    monetVdMix: (h11, h12, h21, h22, c1, c2, a1, a2, g1, g2, G1, G2, s) =>
      k.monetVdMix(
        p(h11),
        p(h12),
        p(h21),
        p(h22),
        p(c1),
        p(c2),
        p(a1),
        p(a2),
        p(g1),
        p(g2),
        p(G1),
        p(G2),
        s.T,
        s.H,
        s.E,
        s.m,
      ),
    monetVdMixBackward: (da1, da2, dg1, dg2, dh11, dh12, dh21, dh22, a1, a2, g1, g2, G1, G2, c1, c2, s) =>
      k.monetVdMixBackward(
        p(da1),
        p(da2),
        p(dg1),
        p(dg2),
        p(dh11),
        p(dh12),
        p(dh21),
        p(dh22),
        p(a1),
        p(a2),
        p(g1),
        p(g2),
        p(G1),
        p(G2),
        p(c1),
        p(c2),
        s.T,
        s.H,
        s.E,
        s.m,
        scratch(8 * s.H * s.m),
      ),
    peerRoute: (ids, scores, q, sk, s) =>
      k.peerRoute(p(ids), p(scores), p(q), p(sk), s.T, s.H, s.dk, s.n, s.k, scratch(24 * s.k)),
    peerRouteBackward: (dq, dsk, dsc, q, sk, ids, s) =>
      k.peerRouteBackward(p(dq), p(dsk), p(dsc), p(q), p(sk), p(ids), s.T, s.H, s.dk, s.n, s.k),
    peerExperts: (y, hpre, x, wd, wu, ids, w, s) =>
      k.peerExperts(p(y), p(hpre), p(x), p(wd), p(wu), p(ids), p(w), s.T, s.H, s.k, s.d, ACT[s.kind]),
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
    moeDispatch: (xs, x, order, s) => k.moeDispatch(p(xs), p(x), p(order), s.P, s.k, s.d),
    moeDispatchBackward: (dx, dxs, pos, s) => k.moeDispatchBackward(p(dx), p(dxs), p(pos), s.T, s.k, s.d),
    moeCombine: (y, ys, w, pos, s) => k.moeCombine(p(y), p(ys), p(w), p(pos), s.T, s.k, s.d),
    moeCombineBackward: (dys, dw, dy, ys, w, pos, s) =>
      k.moeCombineBackward(p(dys), p(dw), p(dy), p(ys), p(w), p(pos), s.T, s.k, s.d),
    smoeAux: (lb, lz, probs, lse, z, idx, s) =>
      k.smoeAux(p(lb), p(lz), p(probs), p(lse), p(z), p(idx), s.T, s.E, s.k, s.scale, scratch(8 * s.E)),
    smoeAuxBackward: (dz, probs, lse, idx, s) =>
      k.smoeAuxBackward(p(dz), p(probs), p(lse), p(idx), s.T, s.E, s.k, s.coefBalance, s.coefZ, scratch(4 * s.E)),
    gatherRows: (dst, table, idx, s) => k.gatherRows(p(dst), p(table), p(idx), s.rows, s.cols),
    widenBf16: (dst, packed, s) => k.widenBf16(p(dst), p(packed), s.n),
    scatterAddRows: (dst, src, idx, s) => k.scatterAddRows(p(dst), p(src), p(idx), s.rows, s.cols),
    rope: (y, x, s) => k.rope(p(y), p(x), s.B, s.S, s.heads, s.hd, s.theta),
    ropeBackward: (dx, dy, s) => k.ropeBackward(p(dx), p(dy), s.B, s.S, s.heads, s.hd, s.theta),
    attention: (out, probs, q, kk, v, s) =>
      k.attention(
        p(out),
        p(probs),
        p(q),
        p(kk),
        p(v),
        s.B,
        s.S,
        s.nH,
        s.nKV,
        s.hd,
        scratch(4 * ex.attentionScratchFloats(s.S, s.hd)),
      ),
    attentionBackward: (dq, dk, dv, dout, q, kk, v, probs, s) =>
      k.attentionBackward(
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
        scratch(4 * ex.attentionScratchFloats(s.S, s.hd)),
      ),
    crossEntropy: (loss, probs, logits, tokens, s) =>
      k.crossEntropy(p(loss), p(probs), p(logits), p(tokens), s.B, s.S, s.V, s.scale),
    crossEntropyBackward: (dl, probs, tokens, s) =>
      k.crossEntropyBackward(p(dl), p(probs), p(tokens), s.B, s.S, s.V, s.scale),
    stepGuard: (ctl, s) => k.stepGuard(p(ctl), s.accum, s.clip, s.step),
    copyIf: (dst, src, cond, s) => k.copyIf(p(dst), p(src), p(cond), s.n, s.at),
    adamw: (pp, g, m, v, ctl, s) =>
      k.adamw(p(pp), p(g), p(m), p(v), p(ctl), s.n, s.lr, s.beta1, s.beta2, s.eps, s.weightDecay, s.step, s.gradScale),
  };
}

/** True when this engine accepts the relaxed-SIMD build (Node 20 only with --experimental-wasm-relaxed-simd). */
export function relaxedSimdSupported(relaxed: Uint8Array | ArrayBuffer | undefined): boolean {
  return !!relaxed && WebAssembly.validate(relaxed as BufferSource);
}

/**
 * A WASM device from the module bytes: the relaxed-SIMD build when the engine validates it (and `preferRelaxed`
 * is not false), the plain SIMD build otherwise.
 */
export async function createWasmDeviceFromBytes(
  bytes: WasmModuleBytes,
  opts: { preferRelaxed?: boolean } = {},
): Promise<HostMemoryDevice> {
  const useRelaxed = opts.preferRelaxed !== false && relaxedSimdSupported(bytes.relaxed);
  const src = (useRelaxed ? bytes.relaxed! : bytes.plain) as BufferSource;
  if (!WebAssembly.validate(src))
    throw new Error(
      'wasm device: this engine does not support WebAssembly SIMD (the plain kernels build does not validate)',
    );
  const { instance } = await WebAssembly.instantiate(src, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new Error(`wasm kernels aborted at asm line ${line}:${col}`);
      },
    },
  });
  return new WasmDevice(instance.exports as unknown as Exports, useRelaxed);
}
