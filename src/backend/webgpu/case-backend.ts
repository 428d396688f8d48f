// The webgpu entry of the backend registry: a WebGPU Device (device.ts) run through the shared case runner
// (src/backend/run-case.ts), so fixtures exercise exactly the layer code every device shares.
import type { CaseBackend } from '../case.ts';
import { BackendUnavailable } from '../registry.ts';
import { deviceCaseBackend } from '../run-case.ts';
import { NoAdapterError, type OpenOptions } from './gpu.ts';
import { createWebGpuDevice } from './device.ts';

export async function createWebGpuCaseBackend(opts: OpenOptions = {}): Promise<CaseBackend> {
  try {
    const dev = await createWebGpuDevice(opts);
    return deviceCaseBackend(dev, 'webgpu');
  } catch (e) {
    if (e instanceof NoAdapterError) throw new BackendUnavailable(`webgpu: ${e.message}`);
    throw e;
  }
}
