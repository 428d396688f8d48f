// Picking the backend a run trains on. `auto` = WebGPU when a hardware adapter exists, else WASM (a software
// WebGPU adapter such as Mesa's llvmpipe would be slower than WASM on the same CPU; `--backend webgpu` forces it).
// The float64 reference is only used when asked for (it is exact and slow: tests, tiny runs, the trajectory check).
// WASM runs on `threads` threads (EngineOptions; results do not depend on the count).

import type { Engine, EngineInit } from './engine.ts';
import type { BackendChoice } from './options.ts';

/**
 * The backend cannot run here. `missing` = its implementation is not part of this build at all (as opposed to
 * present but without, e.g., a WebGPU adapter on this machine); tests may skip the first, never the second in CI.
 */
export class EngineUnavailable extends Error {
  constructor(
    message: string,
    readonly missing = false,
  ) {
    super(message);
    this.name = 'EngineUnavailable';
  }
}

export interface EngineChoice {
  engine: Engine;
  /** Why auto picked this backend (printed at the start of a run). */
  why: string;
}

/** How to open a backend: threads for wasm (default 1); `hardwareOnly` for auto's WebGPU probe. */
export interface EngineOptions {
  threads?: number;
}

async function create(
  name: 'reference' | 'wasm' | 'webgpu' | 'js',
  init: EngineInit,
  o: EngineOptions & { hardwareOnly?: boolean } = {},
): Promise<Engine> {
  switch (name) {
    case 'reference': {
      const { ReferenceEngine } = await import('./engine-reference.ts');
      return new ReferenceEngine(init.config, init);
    }
    case 'wasm':
    case 'webgpu':
    case 'js': {
      const { createDeviceEngine } = await import('./engine-device.ts');
      return createDeviceEngine(name, init, o);
    }
  }
}

export async function createEngine(
  choice: BackendChoice,
  init: EngineInit,
  o: EngineOptions = {},
): Promise<EngineChoice> {
  if (choice !== 'auto') return { engine: await create(choice, init, o), why: `--backend ${choice}` };
  try {
    return {
      engine: await create('webgpu', init, { ...o, hardwareOnly: true }),
      why: 'auto: a hardware WebGPU adapter is available',
    };
  } catch (e) {
    if (!(e instanceof EngineUnavailable)) throw e;
    const engine = await create('wasm', init, o);
    return { engine, why: `auto: WebGPU unavailable (${e.message}); using WASM` };
  }
}
