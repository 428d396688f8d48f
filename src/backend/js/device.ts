// The plain-JavaScript device: tensors are typed arrays, kernels are src/backend/js/kernels.ts.

import type { Device } from '../device.ts';
import type { DTensor, DType, F32, I32 } from '../kernels.ts';
import { jsKernels, type JsTensor } from './kernels.ts';

class JsDevice implements Device {
  readonly name = 'js';
  readonly kernels = jsKernels;
  private live = new Set<DTensor>();

  alloc(dtype: 'f32', length: number): F32;
  alloc(dtype: 'i32', length: number): I32;
  alloc(dtype: DType, length: number): DTensor;
  alloc(dtype: DType, length: number): DTensor {
    if (!Number.isInteger(length) || length < 0)
      throw new Error(`js device alloc: expected a non-negative integer length, found ${length}`);
    const t: JsTensor = {
      dtype,
      length,
      data: dtype === 'f32' ? new Float32Array(length) : new Int32Array(length),
    } as JsTensor;
    this.live.add(t);
    return t;
  }
  upload(data: Float32Array): F32;
  upload(data: Int32Array): I32;
  upload(data: Float32Array | Int32Array): DTensor {
    const t = this.alloc(data instanceof Float32Array ? 'f32' : 'i32', data.length) as JsTensor;
    t.data.set(data);
    return t;
  }
  read(t: F32): Promise<Float32Array>;
  read(t: I32): Promise<Int32Array>;
  async read(t: DTensor): Promise<Float32Array | Int32Array> {
    if (!this.live.has(t)) throw new Error('js device read: tensor was freed or belongs to another device');
    return (t as JsTensor).data.slice();
  }
  free(t: DTensor): void {
    this.live.delete(t);
  }
  dispose(): void {
    this.live.clear();
  }
}

export function createJsDevice(): Device {
  return new JsDevice();
}
