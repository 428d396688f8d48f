// `monet-ts/layers`: every layer and the LM written once against the typed kernel contract (src/backend/kernels.ts),
// in float32 on any Device — the plain-JS oracle here, `monet-ts/wasm` or `monet-ts/webgpu`.

export type { Device, HostMemoryDevice } from '../backend/device.ts';
export { isHostMemoryDevice, Scope } from '../backend/device.ts';
export { createJsDevice } from '../backend/js/device.ts';
export { KERNELS, STEP, type F32, type I32, type KernelName, type Kernels } from '../backend/kernels.ts';
export * from './common.ts';
export * from './dense-ffn.ts';
export * from './lm-decode.ts';
export * from './lm-ffn.ts';
export * from './lm.ts';
export * from './monet-hd.ts';
export * from './monet-router.ts';
export * from './monet-vd.ts';
export * from './packed-weights.ts';
export * from './peer.ts';
export * from './smoe.ts';
export * from './topk.ts';
