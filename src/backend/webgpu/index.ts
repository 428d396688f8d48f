// `monet-ts/webgpu`: the WGSL backend on WebGPU (Dawn in Node through the optional `webgpu` package; a browser's
// navigator.gpu) — the device and the fixture case backend that `monet check --backend webgpu` uses.

export { createWebGpuCaseBackend } from './case-backend.ts';
export { createWebGpuDevice, WebGpuDevice } from './device.ts';
export { Gpu, NoAdapterError, openGpu, type OpenOptions } from './gpu.ts';
