// Node loader for the WASM device: reads asm/build/*.wasm (built by scripts/build-asm.mjs on npm install / test /
// start). Browsers use createWasmDeviceFromBytes (device.ts) with fetched bytes instead.
//
// Relaxed SIMD: Node 20 validates the relaxed build only with V8's --experimental-wasm-relaxed-simd. Set
// MONET_WASM_RELAXED=1 to switch that flag on from here (v8.setFlagsFromString, before any compile); otherwise the
// relaxed build is used only when the engine already validates it, and the plain SIMD build is the default.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import type { HostMemoryDevice } from '../device.ts';
import { createWasmDeviceFromBytes } from './device.ts';

export const WASM_BUILD_DIR = fileURLToPath(new URL('../../../asm/build/', import.meta.url));

export function readWasmBytes(): { plain: Uint8Array<ArrayBuffer>; relaxed?: Uint8Array<ArrayBuffer> } {
  const plain = `${WASM_BUILD_DIR}kernels.wasm`;
  const relaxed = `${WASM_BUILD_DIR}kernels-relaxed.wasm`;
  if (!existsSync(plain))
    throw new Error(
      `wasm device: expected the built kernels at ${plain}; run \`npm run build:asm\` (npm install/test/start run it automatically)`,
    );
  // copied into plain ArrayBuffers (a Node Buffer may sit in a shared pool), which WebAssembly APIs are typed for
  return {
    plain: new Uint8Array(readFileSync(plain)),
    relaxed: existsSync(relaxed) ? new Uint8Array(readFileSync(relaxed)) : undefined,
  };
}

let flagSet = false;
/** Switch on V8's relaxed-SIMD support for WebAssembly (Node 20); must happen before the module is compiled. */
export function enableRelaxedSimd(): void {
  if (!flagSet) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  flagSet = true;
}

export async function createWasmDevice(opts: { relaxed?: boolean } = {}): Promise<HostMemoryDevice> {
  const wantRelaxed = opts.relaxed ?? process.env.MONET_WASM_RELAXED === '1';
  if (wantRelaxed) enableRelaxedSimd();
  return createWasmDeviceFromBytes(readWasmBytes(), { preferRelaxed: opts.relaxed ?? true });
}
