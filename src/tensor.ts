// Tensors as they cross public boundaries (fixtures, checkpoints, the checker, backends' case runners).
// Inside the reference, layers work on bare Float64Array with explicit sizes; this type is only the envelope.

export type DType = 'F64' | 'F32' | 'I32' | 'I64' | 'U8';
export type TensorData = Float64Array | Float32Array | Int32Array | BigInt64Array | Uint8Array;

export interface Tensor {
  dtype: DType;
  shape: number[]; // row-major; [] for a 0-d scalar
  data: TensorData;
}

/** Tensors by name (`in.x`, `param.w1.weight`, `grad.in.x`, ...), in insertion order. */
export type TensorMap = Map<string, Tensor>;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function f64(shape: number[], data?: ArrayLike<number>): Tensor {
  const n = numel(shape);
  const out = new Float64Array(n);
  if (data) {
    if (data.length !== n)
      throw new Error(`f64 tensor: expected ${n} values for shape [${shape}], found ${data.length}`);
    out.set(data);
  }
  return { dtype: 'F64', shape, data: out };
}

export function i32(shape: number[], data?: ArrayLike<number>): Tensor {
  const n = numel(shape);
  const out = new Int32Array(n);
  if (data) {
    if (data.length !== n)
      throw new Error(`i32 tensor: expected ${n} values for shape [${shape}], found ${data.length}`);
    out.set(data);
  }
  return { dtype: 'I32', shape, data: out };
}

export function u8(shape: number[], data?: ArrayLike<number>): Tensor {
  const n = numel(shape);
  const out = new Uint8Array(n);
  if (data) {
    if (data.length !== n)
      throw new Error(`u8 tensor: expected ${n} values for shape [${shape}], found ${data.length}`);
    out.set(data);
  }
  return { dtype: 'U8', shape, data: out };
}

/** Any real-valued tensor as float64 (a copy for F32, the same array for F64). Integer tensors are refused. */
export function asF64(t: Tensor, where = 'tensor'): Float64Array {
  if (t.dtype === 'F64') return t.data as Float64Array;
  if (t.dtype === 'F32') return Float64Array.from(t.data as Float32Array);
  throw new Error(`${where}: expected a real tensor (F64 or F32), found ${t.dtype}`);
}

/** Any integer tensor as int32 (I64 values must fit). */
export function asI32(t: Tensor, where = 'tensor'): Int32Array {
  if (t.dtype === 'I32') return t.data as Int32Array;
  if (t.dtype === 'I64') {
    const src = t.data as BigInt64Array;
    const out = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v > 2147483647n || v < -2147483648n)
        throw new Error(`${where}: I64 value ${v} at flat index ${i} does not fit in int32`);
      out[i] = Number(v);
    }
    return out;
  }
  if (t.dtype === 'U8') return Int32Array.from(t.data as Uint8Array);
  throw new Error(`${where}: expected an integer tensor (I32, I64 or U8), found ${t.dtype}`);
}
