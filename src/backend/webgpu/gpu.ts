// WebGPU device for the WGSL backend: adapter selection, explicit limits, error scopes, device loss, buffers that
// stay on the GPU, and one command encoder that batches every dispatch until somebody needs a result.
//
// Where the adapter comes from:
//   - a browser: navigator.gpu, core features;
//   - Node: Dawn through the npm `webgpu` package. We first ask Dawn's default backend (Vulkan on Linux, Metal,
//     D3D12) for a core-feature adapter; where there is none (a CPU-only machine, CI) we fall back to Dawn's
//     OpenGL ES backend on Mesa's software rasteriser (llvmpipe) in *compatibility* mode, which is what runs in CI.
//     MONET_WEBGPU_BACKEND=vulkan|opengles|default forces one. Vulkan on Mesa's lavapipe does not work with this Dawn
//     build, which is why the software path is GL and not Vulkan.
//
// Why everything but `read`/`sync` is synchronous: WebGPU only reports pipeline and dispatch validation errors
// asynchronously (error scopes resolve later). An invalid pipeline does not throw, it silently computes garbage.
// So every compile and every submit opens an error scope and parks the promise; `sync()` (which `read()` calls
// before returning any data) awaits them all and throws the first error. No number leaves the GPU unchecked.
//
// Debugging: MONET_WEBGPU_DEBUG=1 prints each shader's WGSL when it is compiled, and every dispatch with its
// kernel, variant and workgroup counts.

/// <reference types="@webgpu/types" />

import { computeEntryPoints, MAX_STORAGE_BUFFERS, storageBindingsUsed } from './bindings.ts';

export interface OpenOptions {
  /** 'auto' (default): the platform's native backend with core features, else software GL in compatibility mode. */
  backend?: 'auto' | 'default' | 'vulkan' | 'opengles';
  /** Print WGSL and dispatches (defaults to MONET_WEBGPU_DEBUG=1). */
  debug?: boolean;
}

const env: Record<string, string | undefined> = typeof process !== 'undefined' && process.env ? process.env : {};

/** Limits we ask for explicitly: the WebGPU defaults (128 invocations, 16 KiB workgroup memory) are below what the
 *  kernels use, and a device only gets what it requests. We ask for the adapter's maximum of each, except storage
 *  buffers per shader stage: that one we hold at the default 8 (see CAPPED), because 8 is all that a conforming
 *  device must offer (SwiftShader in Chromium offers 10, many devices 8). */
const WANTED_LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** The kernels need at least this much; an adapter that offers less is refused with a clear message. */
const REQUIRED: Partial<Record<(typeof WANTED_LIMITS)[number], number>> = {
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBuffersPerShaderStage: MAX_STORAGE_BUFFERS,
};

/** Limits requested at exactly this value even where the adapter offers more: every kernel must run on any
 *  conforming WebGPU device, so a kernel that needs more storage buffers than the default fails here too, in Node
 *  and in tests, not only in a browser with a smaller limit. */
const CAPPED: Partial<Record<(typeof WANTED_LIMITS)[number], number>> = {
  maxStorageBuffersPerShaderStage: MAX_STORAGE_BUFFERS,
};

/** Uniform buffers kept for reuse (cached by content). */
const MAX_UNIFORMS = 1024;

/** A float32 (or int32/uint32) array living in a GPU storage buffer. `length` counts 4-byte elements. */
export interface GpuBuffer {
  readonly buffer: GPUBuffer;
  readonly length: number;
  readonly label: string;
}

export interface Kernel {
  readonly name: string;
  readonly variant: string;
  readonly pipeline: GPUComputePipeline;
}

/** Uniform struct contents: u32 unless wrapped as {f32: x} or {i32: x}. Fields in the WGSL struct's order. */
export type UniformField = number | { f32: number } | { i32: number };

export class Gpu {
  readonly description: string;
  readonly compat: boolean;
  readonly debug: boolean;
  readonly limits: Record<string, number>;
  private lostMessage: string | null = null;
  private disposing = false; // destroy() was called: a 'destroyed' loss is then ours, not a device loss
  private pending: Promise<GPUError | null>[] = [];
  private pendingWhere: string[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private pipelines = new Map<string, Kernel>();
  private uniforms = new Map<string, GPUBuffer>();
  private temporaries: GPUBuffer[] = [];
  /** Keeps Dawn's GPU object alive for the life of this device: a collected one crashes Dawn. */
  private readonly keepAlive: unknown;

  constructor(
    readonly device: GPUDevice,
    info: { description: string; compat: boolean; debug: boolean; keepAlive: unknown },
  ) {
    this.description = info.description;
    this.compat = info.compat;
    this.debug = info.debug;
    this.keepAlive = info.keepAlive;
    const limits: Record<string, number> = {};
    for (const k of WANTED_LIMITS) limits[k] = Number(device.limits[k]);
    this.limits = limits;
    device.lost.then((i) => {
      if (this.disposing) this.lostMessage = 'WebGPU device was destroyed (dispose() was called); create a new backend';
      // 'destroyed' without our dispose(): someone else destroyed the device (the browser, a test simulating a loss).
      else
        this.lostMessage =
          `WebGPU device lost ` +
          `(${i.reason === 'destroyed' ? 'destroyed outside this backend' : i.reason}): ${i.message || 'no message'}`;
    });
    device.addEventListener?.('uncapturederror', (ev: Event) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      console.error(`WebGPU uncaptured error: ${e.message}`);
    });
  }

  /** Throws if the device is gone, with Dawn's reason. */
  checkAlive(): void {
    if (this.lostMessage) throw new Error(this.lostMessage);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Buffers

  /** A zero-filled storage buffer of `length` 4-byte elements. */
  alloc(length: number, label = 'tensor'): GpuBuffer {
    this.checkAlive();
    if (!Number.isInteger(length) || length < 0)
      throw new Error(`webgpu alloc '${label}': expected a non-negative integer length, found ${length}`);
    const size = Math.max(16, Math.ceil((length * 4) / 16) * 16);
    if (size > this.limits.maxStorageBufferBindingSize) {
      throw new Error(
        `webgpu alloc '${label}': ${length} floats (${size} bytes) exceed this device's storage binding limit of ` +
          `${this.limits.maxStorageBufferBindingSize} bytes`,
      );
    }
    const buffer = this.device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return { buffer, length, label };
  }

  /** Upload host data (float64 is rounded to float32; Int32Array/Uint32Array are copied bit for bit). */
  upload(data: ArrayLike<number> | Float32Array | Int32Array | Uint32Array, label = 'tensor'): GpuBuffer {
    const b = this.alloc(data.length, label);
    this.write(b, data);
    return b;
  }

  write(b: GpuBuffer, data: ArrayLike<number> | Float32Array | Int32Array | Uint32Array, offset = 0): void {
    this.checkAlive();
    if (offset + data.length > b.length)
      throw new Error(`webgpu write '${b.label}': ${data.length} values at offset ${offset} do not fit in ${b.length}`);
    // queue.writeBuffer runs before the next submit, so commands already encoded (which may still read the old
    // contents) must be submitted first to keep program order.
    this.submit();
    const src =
      data instanceof Float32Array || data instanceof Int32Array || data instanceof Uint32Array
        ? data
        : Float32Array.from(data);
    if (src.length === 0) return;
    this.device.queue.writeBuffer(b.buffer, offset * 4, src.buffer, src.byteOffset, src.length * 4);
  }

  /** Read `length` elements from `offset` back to the host, after checking every pending error. */
  async read(b: GpuBuffer, offset = 0, length = b.length - offset): Promise<Float32Array> {
    const bytes = await this.readBytes(b, offset, length);
    return new Float32Array(bytes);
  }

  async readI32(b: GpuBuffer, offset = 0, length = b.length - offset): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(b, offset, length));
  }

  async readU32(b: GpuBuffer, offset = 0, length = b.length - offset): Promise<Uint32Array> {
    return new Uint32Array(await this.readBytes(b, offset, length));
  }

  private async readBytes(b: GpuBuffer, offset: number, length: number): Promise<ArrayBuffer> {
    if (offset < 0 || length < 0 || offset + length > b.length)
      throw new Error(
        `webgpu read '${b.label}': range [${offset}, ${offset + length}) outside its ${b.length} elements`,
      );
    if (length === 0) return new ArrayBuffer(0);
    const size = Math.ceil((length * 4) / 4) * 4;
    const staging = this.device.createBuffer({
      label: `read ${b.label}`,
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(b.buffer, offset * 4, staging, 0, size);
    await this.sync();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    return out;
  }

  /** Copy elements between GPU buffers (queued in order with the dispatches). */
  copy(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, length: number): void {
    if (srcOffset + length > src.length || dstOffset + length > dst.length) {
      throw new Error(
        `webgpu copy: ${length} elements from '${src.label}'@${srcOffset} (${src.length}) to ` +
          `'${dst.label}'@${dstOffset} (${dst.length}) out of range`,
      );
    }
    if (length === 0) return;
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(src.buffer, srcOffset * 4, dst.buffer, dstOffset * 4, length * 4);
  }

  /** Zero a whole buffer (queued in order with the dispatches). */
  clear(b: GpuBuffer): void {
    this.endPass();
    this.ensureEncoder().clearBuffer(b.buffer);
  }

  /** Release a buffer. Commands already encoded may still use it, so it is destroyed right after the next submit
   *  (WebGPU lets submitted work finish on a destroyed buffer; unsubmitted work would fail validation). */
  free(b: GpuBuffer): void {
    this.temporaries.push(b.buffer);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Pipelines and dispatch

  /**
   * Compile (once; cached by name + variant) a compute pipeline from WGSL. `constants` are the shader's `override`
   * values (tile sizes, transpose flags): one WGSL file, several specialised pipelines, all named in debug output.
   */
  kernel(name: string, wgsl: string, constants: Record<string, number> = {}, entryPoint = 'main'): Kernel {
    const variant = Object.entries(constants)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const key = `${name}|${entryPoint}|${variant}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    this.checkAlive();
    if (this.debug)
      console.error(`[webgpu] compile ${name}${variant ? ` (${variant})` : ''} entry ${entryPoint}\n${wgsl}`);
    // WebGPU would report too many storage buffers only later, through an error scope, as a bare validation message;
    // say here which kernel, which entry point and which buffers.
    // (An entry point this reader cannot find is left to WebGPU, whose error names the kernel at the next read.)
    const used = computeEntryPoints(wgsl).includes(entryPoint) ? storageBindingsUsed(wgsl, entryPoint) : [];
    const maxStorage = this.limits.maxStorageBuffersPerShaderStage;
    if (used.length > maxStorage) {
      throw new Error(
        `WGSL kernel '${name}' entry point '${entryPoint}' uses ${used.length} storage buffers ` +
          `(${used.map((u) => u.name).join(', ')}); ` +
          `this device allows ${maxStorage} per shader stage (the WebGPU default that every device offers is ` +
          `${MAX_STORAGE_BUFFERS}): split the pass or pack buffers`,
      );
    }
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('internal');
    const module = this.device.createShaderModule({ label: name, code: wgsl });
    const pipeline = this.device.createComputePipeline({
      label: `${name}[${variant}]`,
      layout: 'auto',
      compute: { module, entryPoint, constants },
    });
    this.park(this.device.popErrorScope(), `compiling WGSL kernel '${name}' (${variant || 'no overrides'})`);
    this.park(this.device.popErrorScope(), `compiling WGSL kernel '${name}' (${variant || 'no overrides'})`);
    const k = { name, variant, pipeline };
    this.pipelines.set(key, k);
    return k;
  }

  /**
   * Queue one dispatch. The uniform struct (when given) is binding 0; the storage buffers go to the binding numbers
   * their WGSL declares (call.ts resolves them by name). An entry point that does not use a declared binding has no
   * slot for it in its 'auto' layout, so only the used ones are passed. Workgroup counts above the per-dimension
   * limit must be folded into y by the caller (see `grid`).
   */
  dispatch(
    k: Kernel,
    uniform: UniformField[] | null,
    buffers: Array<{ binding: number; buffer: GpuBuffer }>,
    groups: [number, number?, number?],
  ): void {
    this.checkAlive();
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (gx > max || gy > max || gz > max)
      throw new Error(
        `webgpu dispatch ${k.name}: workgroups (${gx}, ${gy}, ${gz}) exceed the per-dimension limit ${max}`,
      );
    const entries: GPUBindGroupEntry[] = [];
    if (uniform) entries.push({ binding: 0, resource: { buffer: this.uniformBuffer(uniform) } });
    for (const b of buffers) entries.push({ binding: b.binding, resource: { buffer: b.buffer.buffer } });
    if (this.debug) {
      const u = uniform ? uniform.map((x) => (typeof x === 'number' ? x : 'f32' in x ? x.f32 : x.i32)).join(',') : '';
      const bs = buffers.map((b) => `${b.binding}=${b.buffer.label}:${b.buffer.length}`).join(', ');
      console.error(
        `[webgpu] dispatch ${k.name}[${k.variant}] groups=(${gx},${gy},${gz}) uniform=[${u}] buffers=[${bs}]`,
      );
    }
    this.device.pushErrorScope('validation');
    const bindGroup = this.device.createBindGroup({ layout: k.pipeline.getBindGroupLayout(0), entries });
    this.park(this.device.popErrorScope(), `binding buffers for kernel '${k.name}' [${k.variant}]`);
    if (!this.pass) this.pass = this.ensureEncoder().beginComputePass();
    this.pass.setPipeline(k.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(gx, gy, gz);
    // Very long command buffers make software GL stall and hold memory; submit in chunks.
    if (++this.dispatchesInBatch >= 256) this.submit();
  }

  /** Workgroup counts covering `n` invocations of `wg` threads, folded into (x, y) past the 65535 limit. Shaders
   *  compute the flat index as gid.x + gid.y * num_workgroups.x * wg. */
  grid(n: number, wg: number): [number, number] {
    const groups = Math.ceil(n / wg);
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [Math.max(groups, 1), 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y];
  }

  /** Submit what is encoded so far (no waiting). */
  submit(): void {
    this.endPass();
    if (!this.encoder) return;
    this.device.pushErrorScope('validation');
    const cb = this.encoder.finish();
    this.device.queue.submit([cb]);
    this.park(this.device.popErrorScope(), 'submitting dispatches');
    this.encoder = null;
    this.dispatchesInBatch = 0;
    for (const b of this.temporaries) b.destroy();
    this.temporaries = [];
  }

  /** Submit, wait for the GPU, and throw the first compile/dispatch error or the device-loss reason. */
  async sync(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    const errs = await Promise.all(this.pending);
    const where = this.pendingWhere;
    this.pending = [];
    this.pendingWhere = [];
    this.checkAlive();
    for (let i = 0; i < errs.length; i++) {
      const e = errs[i];
      if (e) throw new Error(`WebGPU error while ${where[i]}: ${e.message}`);
    }
  }

  destroy(): void {
    this.disposing = true;
    this.lostMessage ??= 'WebGPU device was destroyed (dispose() was called); create a new backend';
    this.encoder = null;
    this.pass = null;
    for (const u of this.uniforms.values()) u.destroy();
    this.uniforms.clear();
    this.pipelines.clear();
    this.device.destroy();
    void this.keepAlive;
  }

  private park(p: Promise<GPUError | null>, where: string): void {
    this.pending.push(p);
    this.pendingWhere.push(where);
  }

  private ensureEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Uniform buffers are immutable and cached by content: shapes repeat, so there are few of them. */
  private uniformBuffer(fields: UniformField[]): GPUBuffer {
    const words = new Uint32Array(Math.max(4, Math.ceil(fields.length / 4) * 4));
    const f = new Float32Array(words.buffer);
    const s = new Int32Array(words.buffer);
    let key = '';
    fields.forEach((u, i) => {
      if (typeof u === 'number') {
        if (!Number.isInteger(u) || u < 0 || u > 0xffffffff)
          throw new Error(`webgpu uniform field ${i}: expected a u32, found ${u}`);
        words[i] = u;
      } else if ('f32' in u) f[i] = u.f32;
      else s[i] = u.i32;
    });
    for (const w of words) key += `${w.toString(36)},`;
    let b = this.uniforms.get(key);
    if (b) {
      // Most recently used last (Map keeps insertion order), so eviction below drops the stalest.
      this.uniforms.delete(key);
      this.uniforms.set(key, b);
      return b;
    }
    b = this.device.createBuffer({
      label: `uniform ${key}`,
      size: words.byteLength,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.device.queue.writeBuffer(b, 0, words);
    this.uniforms.set(key, b);
    // Some uniforms change every call (AdamW's bias corrections change every step), so the cache is bounded. An
    // evicted buffer may still be used by encoded commands: it is destroyed after the next submit, like a freed one.
    if (this.uniforms.size > MAX_UNIFORMS) {
      const [oldKey, oldBuf] = this.uniforms.entries().next().value as [string, GPUBuffer];
      this.uniforms.delete(oldKey);
      this.temporaries.push(oldBuf);
    }
    return b;
  }
}

/** Why no adapter could be had, for the skip/failure messages of tests and the CLI. */
export class NoAdapterError extends Error {}

/** Open a WebGPU device (see the header for the adapter order). */
export async function openGpu(opts: OpenOptions = {}): Promise<Gpu> {
  const debug = opts.debug ?? env.MONET_WEBGPU_DEBUG === '1';
  const wanted = opts.backend ?? ((env.MONET_WEBGPU_BACKEND as OpenOptions['backend']) || 'auto');
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const inNode = typeof process !== 'undefined' && !!process.versions?.node;
  if (nav?.gpu && !inNode) {
    const adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter)
      throw new NoAdapterError('navigator.gpu.requestAdapter() returned null (WebGPU disabled or no usable GPU)');
    return finish(adapter, false, debug, null, 'browser');
  }
  let dawn: { create(o: string[]): GPU; globals: object };
  try {
    dawn = await import('webgpu');
  } catch (e) {
    throw new NoAdapterError(`the npm package 'webgpu' (Dawn for Node) could not be loaded: ${(e as Error).message}`);
  }
  // Dawn's GL backend needs an EGL platform; surfaceless works without a display. It must be set before create().
  if (!env.EGL_PLATFORM) env.EGL_PLATFORM = 'surfaceless';
  // The GPU* constants (GPUBufferUsage, ...) are globals in browsers; Dawn hands them over separately.
  for (const [k, v] of Object.entries(dawn.globals))
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const tried: string[] = [];
  if (wanted === 'auto' || wanted === 'default' || wanted === 'vulkan') {
    const gpu = dawn.create(wanted === 'vulkan' ? ['backend=vulkan'] : []);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance', featureLevel: 'core' });
    const info = adapter?.info;
    const software =
      !!info &&
      (info.isFallbackAdapter ||
        /llvmpipe|lavapipe|swiftshader/i.test(
          `${info.vendor} ${info.architecture} ${info.device} ${info.description}`,
        ));
    // A software Vulkan adapter (Mesa's lavapipe) is skipped in auto mode: with this Dawn build it does not work,
    // and the GL path below is the tested software route.
    if (adapter && !(software && wanted === 'auto'))
      return finish(adapter, false, debug, gpu, wanted === 'vulkan' ? 'vulkan' : 'default');
    tried.push(
      `Dawn ${wanted === 'vulkan' ? 'Vulkan' : 'default'} backend, core features: ` +
        `${adapter ? `skipped software adapter '${info?.description || info?.device}'` : 'no adapter'}`,
    );
  }
  if (wanted === 'auto' || wanted === 'opengles') {
    const gpu = dawn.create(['backend=opengles']);
    const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
    if (adapter) return finish(adapter, true, debug, gpu, 'opengles');
    tried.push(
      `Dawn OpenGL ES backend (EGL_PLATFORM=${env.EGL_PLATFORM}), compatibility mode: no adapter (is Mesa's ` +
        `libEGL/libGLES installed? apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri)`,
    );
  }
  throw new NoAdapterError(`no WebGPU adapter: ${tried.join('; ')}`);
}

async function finish(
  adapter: GPUAdapter,
  compatRequested: boolean,
  debug: boolean,
  keepAlive: unknown,
  backend: string,
): Promise<Gpu> {
  const requiredLimits: Record<string, number> = {};
  for (const k of WANTED_LIMITS) {
    const have = Number(adapter.limits[k]);
    const need = REQUIRED[k];
    if (need !== undefined && have < need)
      throw new NoAdapterError(`WebGPU adapter offers ${k} = ${have}; the kernels need at least ${need}`);
    requiredLimits[k] = CAPPED[k] !== undefined ? Math.min(have, CAPPED[k]!) : have;
  }
  const device = await adapter.requestDevice({ requiredLimits, label: 'monet-ts' });
  const i = adapter.info;
  const name =
    [i.vendor, i.architecture, i.device, i.description]
      .filter((s) => s)
      .join(' ')
      .trim() || 'unknown adapter';
  const compat = compatRequested;
  const description = `${name} (${backend}, ${compat ? 'compatibility' : 'core'})`;
  if (debug) console.error(`[webgpu] adapter: ${description}; limits ${JSON.stringify(requiredLimits)}`);
  return new Gpu(device, { description, compat, debug, keepAlive });
}
