// The backends the layer and scaling benchmarks run on, opened side by side, plus a Device wrapper that counts
// the bytes of live tensors (for the memory columns).
//
// Every backend here runs the same layer code (src/layers/) over the contract in src/backend/{kernels,device}.ts;
// they differ only in their kernels. WASM runs one thread. WebGPU in Node is Dawn; on a machine without a GPU the
// adapter is Mesa's software rasteriser (llvmpipe) through OpenGL ES, so its timings measure a CPU emulating a GPU:
// they are labelled "not a performance figure" in every table.

import type { Device } from '../../src/backend/device.ts';
import type { DTensor, DType, F32, I32 } from '../../src/backend/kernels.ts';
import { createJsDevice } from '../../src/backend/js/device.ts';
import { createWasmDeviceFromBytes } from '../../src/backend/wasm/device.ts';
import { enableRelaxedSimd, readWasmBytes } from '../../src/backend/wasm/node.ts';

export interface BenchDevice {
  /** Row label: 'js', 'wasm simd', 'wasm relaxed-simd', 'webgpu'. */
  label: string;
  dev: Device;
  /** Resolves when every enqueued kernel has run (WebGPU: the queue drained; others run kernels synchronously). */
  sync: (() => Promise<void>) | null;
  /** Set when the figures of this backend say nothing about its real speed (software GPU). */
  note?: string;
}

export const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;
export const NOT_PERF = 'software GL (Mesa llvmpipe): not a performance figure';

/** Whether the relaxed-SIMD build validates once V8's flag is on (Node 20 needs --experimental-wasm-relaxed-simd). */
export function wasmFeatures(): { simd: boolean; relaxed: boolean } {
  enableRelaxedSimd();
  const bytes = readWasmBytes();
  return { simd: WebAssembly.validate(bytes.plain), relaxed: !!bytes.relaxed && WebAssembly.validate(bytes.relaxed) };
}

export async function openWasm(relaxed: boolean): Promise<Device> {
  // the V8 flag is process-wide: switch it on only when the relaxed build is wanted (the test suite shares a process)
  if (relaxed) enableRelaxedSimd();
  return createWasmDeviceFromBytes(readWasmBytes(), { preferRelaxed: relaxed });
}

/**
 * Opens the backends named in `which` ('js', 'wasm', 'wasm-relaxed', 'webgpu'); a backend that cannot open here is
 * returned in `skipped` with the reason (printed and recorded, never silently dropped).
 */
export async function openDevices(
  which: readonly string[],
): Promise<{ devices: BenchDevice[]; skipped: { label: string; reason: string }[] }> {
  const devices: BenchDevice[] = [];
  const skipped: { label: string; reason: string }[] = [];
  for (const w of which) {
    try {
      if (w === 'js') devices.push({ label: 'js', dev: createJsDevice(), sync: null });
      else if (w === 'wasm') devices.push({ label: 'wasm simd', dev: await openWasm(false), sync: null });
      else if (w === 'wasm-relaxed') {
        if (!wasmFeatures().relaxed) throw new Error('the relaxed-SIMD build does not validate on this engine');
        devices.push({ label: 'wasm relaxed-simd', dev: await openWasm(true), sync: null });
      } else if (w === 'webgpu') {
        const { createWebGpuDevice } = await import('../../src/backend/webgpu/device.ts');
        const dev = await createWebGpuDevice();
        const software = SOFTWARE_ADAPTER.test(dev.gpu.description);
        devices.push({ label: 'webgpu', dev, sync: () => dev.gpu.sync(), note: software ? NOT_PERF : undefined });
      } else throw new Error(`unknown backend '${w}'; expected js, wasm, wasm-relaxed or webgpu`);
    } catch (e) {
      skipped.push({ label: w, reason: (e as Error).message.split('\n')[0] });
    }
  }
  return { devices, skipped };
}

/** The device's adapter in words, for the machine record. */
export function describe(d: BenchDevice): string {
  return d.dev.name;
}

/** Live and peak bytes of the tensors allocated through a CountingDevice. */
export interface TensorBytes {
  live: number;
  peak: number;
}

/**
 * Wraps a device so that every alloc/upload/free is counted: `bytes.peak` is the largest total of tensors alive at
 * once (parameters, gradients, inputs and every temporary a layer allocates in forward and backward), 4 bytes per
 * element. This is the memory the model itself needs, independent of the allocator's rounding and growth policy.
 */
export function countingDevice(inner: Device): Device & { bytes: TensorBytes } {
  const bytes: TensorBytes = { live: 0, peak: 0 };
  const add = (t: DTensor) => {
    bytes.live += 4 * t.length;
    if (bytes.live > bytes.peak) bytes.peak = bytes.live;
  };
  // One implementation behind each overloaded method: the overloads only narrow the tensor type by argument.
  const alloc = (dtype: DType, length: number): DTensor => {
    const t = inner.alloc(dtype, length);
    add(t);
    return t;
  };
  const upload = (data: Float32Array | Int32Array): DTensor => {
    const t = data instanceof Float32Array ? inner.upload(data) : inner.upload(data);
    add(t);
    return t;
  };
  const read = (t: DTensor) => (t.dtype === 'f32' ? inner.read(t as F32) : inner.read(t as I32));
  return {
    name: inner.name,
    kernels: inner.kernels,
    bytes,
    alloc: alloc as Device['alloc'],
    upload: upload as Device['upload'],
    read: read as Device['read'],
    free(t: DTensor) {
      bytes.live -= 4 * t.length;
      inner.free(t);
    },
    dispose() {
      return inner.dispose();
    },
  };
}
