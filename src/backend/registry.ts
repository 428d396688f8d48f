// Backends that can run fixture cases, by name. `monet check --backend <name>` and the test suite look them up
// here. Each entry loads its implementation lazily, so that checking on the reference never loads WebGPU.
//
// To add a backend, add one entry to BUILTIN below (or call registerBackend at run time, e.g. from a test):
//   { name: 'wasm', description: 'AssemblyScript WASM-SIMD, float32', preset: 'f32',
//     create: async () => (await import('../wasm/case-backend.ts')).createWasmCaseBackend() }
// `create` throws BackendUnavailable (with the reason) when the backend cannot run here, e.g. no WebGPU adapter;
// the checker then reports the backend as unavailable, with that reason, instead of failing or passing.

import type { CaseBackend } from './case.ts';
import type { PresetName, ToleranceOverride } from '../fixtures/checker.ts';

export interface BackendEntry {
  name: string;
  description: string;
  /** The tolerance preset its results are compared with by default (`f64` for float64, `f32` for float32 kernels). */
  preset: PresetName;
  /** Per-tensor tolerance changes, each with its reason (see src/fixtures/checker.ts). */
  overrides?: readonly ToleranceOverride[];
  create(): Promise<CaseBackend>;
}

/** Thrown by BackendEntry.create when the backend cannot run on this machine; the message says why. */
export class BackendUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendUnavailable';
  }
}

const BUILTIN: BackendEntry[] = [
  {
    name: 'reference',
    description: 'float64 reference (reference/), forward and hand-written backward',
    preset: 'f64',
    create: async () => (await import('../fixtures/reference-cases.ts')).createReferenceBackend(),
  },
  {
    name: 'webgpu',
    description: 'WGSL compute shaders through WebGPU (Dawn in Node: native GPU, else Mesa software GL), float32',
    preset: 'f32',
    create: async () => (await import('./webgpu/case-backend.ts')).createWebGpuCaseBackend(),
  },
  {
    name: 'wasm',
    description: 'AssemblyScript kernels, WebAssembly SIMD (relaxed SIMD where the engine has it), float32, one thread',
    preset: 'f32',
    create: async () => (await import('./wasm/case-backend.ts')).createWasmCaseBackend(),
  },
];

const entries = new Map<string, BackendEntry>(BUILTIN.map((e) => [e.name, e]));

/** Add (or replace) a backend entry. */
export function registerBackend(entry: BackendEntry): void {
  entries.set(entry.name, entry);
}

export function backendNames(): string[] {
  return [...entries.keys()];
}

export function getBackendEntry(name: string): BackendEntry {
  const e = entries.get(name);
  if (!e) throw new Error(`unknown backend '${name}'; expected one of ${backendNames().join(', ')} or 'all'`);
  return e;
}
