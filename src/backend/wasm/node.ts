// Node loader for the WASM device: reads asm/build/*.wasm (built by scripts/build-asm.mjs on npm install / test /
// start) and starts the device's worker threads with worker_threads. Browsers use createWasmDeviceFromBytes
// (device.ts) with fetched bytes instead.
//
// Relaxed SIMD (a fused multiply-add in the matmul micro-kernel): Node 20 validates the relaxed builds only with
// V8's --experimental-wasm-relaxed-simd, which this loader switches on (v8.setFlagsFromString, before any compile)
// unless MONET_WASM_RELAXED=0 or `relaxed: false`; newer Node versions validate them without it. The plain SIMD
// builds run where the relaxed ones do not validate.

import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { createWasmDeviceFromBytes, type WasmDevice, type WasmModuleBytes } from './device.ts';
import type { SpawnWorker } from './threads.ts';

export const WASM_BUILD_DIR = fileURLToPath(new URL('../../../asm/build/', import.meta.url));

/** The four kernel builds (plain / relaxed SIMD, own / shared memory); the relaxed and shared ones when present. */
type Bytes = Uint8Array<ArrayBuffer>;
export function readWasmBytes(): WasmModuleBytes & {
  plain: Bytes;
  relaxed?: Bytes;
  threads?: Bytes;
  threadsRelaxed?: Bytes;
} {
  const file = (name: string) => `${WASM_BUILD_DIR}${name}`;
  const plain = file('kernels.wasm');
  if (!existsSync(plain))
    throw new Error(
      `wasm device: expected the built kernels at ${plain}; run \`npm run build:asm\` ` +
        '(npm install/test/start run it automatically)',
    );
  // copied into plain ArrayBuffers (a Node Buffer may sit in a shared pool), which WebAssembly APIs are typed for
  const read = (name: string): Bytes | undefined =>
    existsSync(file(name)) ? new Uint8Array(readFileSync(file(name))) : undefined;
  return {
    plain: new Uint8Array(readFileSync(plain)),
    relaxed: read('kernels-relaxed.wasm'),
    threads: read('kernels-threads.wasm'),
    threadsRelaxed: read('kernels-threads-relaxed.wasm'),
  };
}

let flagSet = false;
/** Switch on V8's relaxed-SIMD support for WebAssembly (Node 20); must happen before the module is compiled. */
export function enableRelaxedSimd(): void {
  if (!flagSet) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  flagSet = true;
}

/** The machine's cores as Node sees them (the default number of threads for `monet train|sample|eval`). */
export function machineThreads(): number {
  return availableParallelism();
}

/** What a Web Worker's program expects and a Node worker lacks: `self.onmessage`, here on worker_threads' port. */
const NODE_WORKER_PRELUDE = `const self = { set onmessage(f) {
  require('node:worker_threads').parentPort.once('message', (data) => f({ data }));
} };
`;

/**
 * Workers from worker_threads running the pool's source text. They do not keep the process alive (unref), and
 * start without the parent's loader flags (their program is plain JavaScript).
 */
export const spawnNodeWorker: SpawnWorker = (source, onError) => {
  const w = new Worker(NODE_WORKER_PRELUDE + source, { eval: true, execArgv: [] });
  w.on('error', onError);
  w.unref();
  return w;
};

export interface NodeWasmOptions {
  /** Relaxed SIMD (default: on unless MONET_WASM_RELAXED=0). */
  relaxed?: boolean;
  /** Threads, this one included (default 1). */
  threads?: number;
}

export async function createWasmDevice(opts: NodeWasmOptions = {}): Promise<WasmDevice> {
  const wantRelaxed = opts.relaxed ?? process.env.MONET_WASM_RELAXED !== '0';
  if (wantRelaxed) enableRelaxedSimd();
  return createWasmDeviceFromBytes(readWasmBytes(), {
    preferRelaxed: wantRelaxed,
    threads: opts.threads ?? 1,
    spawnWorker: spawnNodeWorker,
    canBlock: true,
  });
}
