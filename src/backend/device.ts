// A compute device: memory for flat float32/int32 tensors plus the kernels of src/backend/kernels.ts.
//
// The layers (src/layers/) only ever see this interface. Allocation, upload and kernel calls are synchronous and
// enqueue work; `read` is the one asynchronous operation (a WebGPU backend submits its pending commands there).

import type { DTensor, DType, F32, I32, Kernels } from './kernels.ts';

export interface Device {
  /** 'wasm', 'webgpu', 'js', ... with any detail worth printing (e.g. 'wasm (relaxed-simd)'). */
  readonly name: string;
  readonly kernels: Kernels;
  /** A zero-filled tensor of `length` elements. */
  alloc(dtype: 'f32', length: number): F32;
  alloc(dtype: 'i32', length: number): I32;
  alloc(dtype: DType, length: number): DTensor;
  /** A new tensor holding a copy of `data` (Float32Array → 'f32', Int32Array → 'i32'). */
  upload(data: Float32Array): F32;
  upload(data: Int32Array): I32;
  /** The tensor's contents once every kernel enqueued before this call has run. */
  read(t: F32): Promise<Float32Array>;
  read(t: I32): Promise<Int32Array>;
  /** Releases the tensor's memory; using it afterwards is an error. */
  free(t: DTensor): void;
  /** Releases everything the device holds. */
  dispose(): void | Promise<void>;
}

/**
 * A device whose tensors live in host memory (the WASM device): they can be read and written synchronously between
 * kernel calls, e.g. by a hook in the middle of a forward pass (src/interp/wasm-forward.ts).
 */
export interface HostMemoryDevice extends Device {
  /** A copy of the tensor's contents, now. */
  readSync(t: F32): Float32Array;
  readSync(t: I32): Int32Array;
  /** Overwrite the tensor's contents (data.length must equal its length). */
  writeSync(t: F32, data: Float32Array): void;
  /** Overwrite elements at..at + data.length − 1 of an int32 tensor (the rest keeps its values). */
  writeRange(t: I32, data: Int32Array, at: number): void;
}

export function isHostMemoryDevice(d: Device): d is HostMemoryDevice {
  return typeof (d as Partial<HostMemoryDevice>).readSync === 'function';
}

/**
 * Tracks tensors allocated for one computation so they can be freed together (forward/backward temporaries).
 * Layers allocate through a Scope; the caller decides when the scope ends.
 */
export class Scope {
  private readonly owned: DTensor[] = [];
  constructor(readonly dev: Device) {}

  /** Zero-filled float32 tensor. */
  f32(length: number): F32 {
    const t = this.dev.alloc('f32', length);
    this.owned.push(t);
    return t;
  }
  /** Zero-filled int32 tensor. */
  i32(length: number): I32 {
    const t = this.dev.alloc('i32', length);
    this.owned.push(t);
    return t;
  }
  /** Upload host data into a tensor owned by this scope. */
  upload(data: Float32Array): F32;
  upload(data: Int32Array): I32;
  upload(data: Float32Array | Int32Array): DTensor {
    const t = data instanceof Float32Array ? this.dev.upload(data) : this.dev.upload(data);
    this.owned.push(t);
    return t;
  }
  /** Frees every tensor this scope allocated. */
  release(): void {
    for (const t of this.owned) this.dev.free(t);
    this.owned.length = 0;
  }
}
