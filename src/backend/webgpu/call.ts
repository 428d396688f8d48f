// Calling a WGSL entry point by name. The kernel table (kernels.generated.ts, written from the WGSL declarations by
// `npm run gen:wgsl`) gives each kernel file's uniform fields and storage bindings by name; these types turn it into
// the signature of a call, so that a caller names every size and every buffer, and the compiler refuses a call that
// misses a binding the entry point uses, passes one it does not use, or forgets a uniform field. The dispatcher puts
// each value where the WGSL declared it: no positional arrays, no padding for unused bindings, no struct order.

import type { GpuBuffer, UniformField } from './gpu.ts';
import { COMMON_WGSL, KERNELS } from './kernels.generated.ts';

type Table = typeof KERNELS;

/** A kernel file of wgsl/ (its name without `.wgsl`). */
export type KernelFile = keyof Table;
/** The entry points of a kernel file. */
export type EntryOf<K extends KernelFile> = keyof Table[K]['entries'] & string;
/** The uniform struct of a kernel file, by field name (values are converted to the declared u32/f32/i32). */
export type UniformOf<K extends KernelFile> = { [F in Table[K]['uniform'][number] as F[0]]: number };
/** The storage buffers an entry point uses, by binding name. */
export type BuffersOf<K extends KernelFile, E extends EntryOf<K>> = {
  [N in Table[K]['entries'][E] extends readonly string[] ? Table[K]['entries'][E][number] : never]: GpuBuffer;
};

/** A storage buffer at its binding number. */
export interface Bound {
  binding: number;
  buffer: GpuBuffer;
}

/** What one named call compiles and binds: the full source, the uniform words in struct order, the bindings. */
export interface BoundCall {
  src: string;
  uniform: UniformField[] | null;
  bindings: Bound[];
}

/** Resolve a named call against the kernel table. Throws naming the kernel when a field or buffer is missing. */
export function bindCall<K extends KernelFile, E extends EntryOf<K>>(
  file: K,
  entry: E,
  dims: NoInfer<UniformOf<K>>,
  buffers: NoInfer<BuffersOf<K, E>>,
): BoundCall {
  const decl = KERNELS[file];
  const sizes: Record<string, number> = dims;
  const bufs: Record<string, GpuBuffer | undefined> = buffers;
  const fields: ReadonlyArray<readonly [string, string]> = decl.uniform;
  const uniform = fields.map(([name, type]): UniformField => {
    const v = sizes[name];
    if (typeof v !== 'number') throw new Error(`webgpu ${file}.${entry}: uniform field '${name}' not given`);
    return type === 'f32' ? { f32: v } : type === 'i32' ? { i32: v } : v;
  });
  const slots: Record<string, number> = decl.bindings;
  const used: readonly string[] = (decl.entries as Record<string, readonly string[]>)[entry];
  const bindings = used.map((name) => {
    const buffer = bufs[name];
    if (!buffer) throw new Error(`webgpu ${file}.${entry}: storage buffer '${name}' not given`);
    return { binding: slots[name], buffer };
  });
  return {
    src: decl.common ? `${COMMON_WGSL}\n${decl.src}` : decl.src,
    uniform: fields.length ? uniform : null,
    bindings,
  };
}
