// `monet-ts/wasm`: the AssemblyScript WebAssembly-SIMD backend in Node — the device (every kernel of the contract in
// src/backend/kernels.ts, on one or several threads) and the fixture case backend that `monet check --backend wasm`
// uses.

export { createWasmCaseBackend } from './case-backend.ts';
export { createWasmDevice, enableRelaxedSimd, machineThreads, readWasmBytes, WASM_BUILD_DIR } from './node.ts';
export type { NodeWasmOptions } from './node.ts';
export {
  createWasmDeviceFromBytes,
  relaxedSimdSupported,
  type WasmDevice,
  type WasmDeviceOptions,
  type WasmModuleBytes,
} from './device.ts';
