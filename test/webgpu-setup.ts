// Shared WebGPU device for the webgpu-* tests (one per test process). Outside CI a missing adapter makes the WebGPU
// tests skipped tests, each with the reason printed (test/skip.ts); under CI=true it is a failure, because CI must
// exercise this backend.
import { openGpu, NoAdapterError, type Gpu } from '../src/backend/webgpu/gpu.ts';
import { test } from 'uvu';
import { IN_CI, testUnless } from './skip.ts';

let opened: Promise<Gpu | null> | null = null;
let missing: string | null = null;

export function sharedGpu(): Promise<Gpu | null> {
  opened ??= openGpu().catch((e: unknown) => {
    if (e instanceof NoAdapterError && !IN_CI) {
      missing = `no WebGPU adapter here (${e.message})`;
      return null;
    }
    throw e;
  });
  return opened;
}

/** The shared device, for a test registered with `gpuTest` (which does not run without one). */
export async function requireGpu(): Promise<Gpu> {
  const gpu = await sharedGpu();
  if (!gpu) throw new Error(`a WebGPU test ran without an adapter: ${missing}`);
  return gpu;
}

/** Why the WebGPU tests cannot run here, or null when they can (under CI=true always null: they must run). */
export async function gpuMissing(): Promise<string | null> {
  try {
    await sharedGpu();
  } catch {
    return null; // CI, or an error other than a missing adapter: the tests run and report it
  }
  return missing;
}

/** `test` for a test that needs the WebGPU device: a skipped test, with the reason, where there is none. */
export const gpuTest = testUnless(await gpuMissing());

/** `test` for a test on `backend`: on webgpu it is `gpuTest`; the other backends run everywhere. */
export function backendTest(backend: string): typeof gpuTest {
  return backend === 'webgpu' ? gpuTest : test;
}
