// Shared WebGPU device for the webgpu-* tests (one per test process). Outside CI a missing adapter skips the
// WebGPU tests with the reason printed; under CI=true it is a failure, because CI must exercise this backend.
import { openGpu, NoAdapterError, type Gpu } from '../src/backend/webgpu/gpu.ts';

let opened: Promise<Gpu | null> | null = null;

export function sharedGpu(): Promise<Gpu | null> {
  opened ??= openGpu().catch((e: unknown) => {
    if (e instanceof NoAdapterError && process.env.CI !== 'true') {
      console.log(`SKIP webgpu tests: ${e.message}`);
      return null;
    }
    throw e;
  });
  return opened;
}
