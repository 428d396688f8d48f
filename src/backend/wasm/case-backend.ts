// The wasm entry of the backend registry: the WASM device (AssemblyScript kernels, asm/) run through the shared
// case runner (src/backend/run-case.ts), so fixtures exercise exactly the layer code every device shares.
import type { CaseBackend } from '../case.ts';
import { BackendUnavailable } from '../registry.ts';
import { deviceCaseBackend } from '../run-case.ts';
import { createWasmDevice } from './node.ts';

export async function createWasmCaseBackend(opts: { relaxed?: boolean } = {}): Promise<CaseBackend> {
  let dev: Awaited<ReturnType<typeof createWasmDevice>>;
  try {
    dev = await createWasmDevice(opts);
  } catch (e) {
    throw new BackendUnavailable(`wasm: ${(e as Error).message}`);
  }
  return deviceCaseBackend(dev, 'wasm');
}
