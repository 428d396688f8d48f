// The 16-bit matrix product on the WASM backend at the shapes a MonetLLM 1.4B forward uses (not a test):
//   matmulBf16         the weights read as bfloat16 in place (gemvBf16 for one token, gemmBf16 for a prompt)
//   widen + matmul     what the 16-bit path did before: widenBf16 into a float32 slot, then the float32 matmul
//   matmul (f32)       the weights held as float32 (twice the memory)
// For each: wall and process CPU time per product, GFLOP/s (2·M·N·K) and the weight bytes read per second (GB/s;
// one token reads every weight once, so that rate is the ceiling of decoding). Load average printed with each line.
//
//   node --import tsx bench/matmul-bf16.ts [--threads 1] [--tokens 1] [--reps 20]

import { loadavg } from 'node:os';
import type { Device } from '../src/backend/device.ts';
import type { F32, I32 } from '../src/backend/kernels.ts';
import { createWasmDevice } from '../src/backend/wasm/node.ts';
import { parseFlags, type FlagSpec } from '../src/train/flags.ts';

const FLAGS: FlagSpec[] = [
  { name: 'threads', type: 'int', positive: true, help: 'threads of the wasm device (default 1)' },
  { name: 'tokens', type: 'int', positive: true, help: 'rows M of the product (default 1: decoding)' },
  { name: 'reps', type: 'int', positive: true, help: 'products timed per shape and variant (default 20)' },
];
const f = parseFlags('bench/matmul-bf16.ts', FLAGS, process.argv.slice(2));
const threads = (f.threads as number | undefined) ?? 1;
const M = (f.tokens as number | undefined) ?? 1;
const reps = (f.reps as number | undefined) ?? 20;

// (N, K) of the 1.4B's matrices (hidden 2048, 16 heads, √N = 512 experts per side, moe_dim 16: VD halves 8)
const SHAPES: Array<[string, number, number]> = [
  ['q/k/v/o_proj (2048, 2048)', 2048, 2048],
  ['VD u1/u2, router w1/w2 (4096, 2048)', 4096, 2048],
  ['VD v11..v22 (1024, 4096)', 1024, 4096],
  ['lm_head (32000, 2048)', 32000, 2048],
];

const dev: Device = await createWasmDevice({ threads });
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
console.log(`${dev.name}, M = ${M} token(s), ${reps} products per line`);
for (const [name, N, K] of SHAPES) {
  const bits = new Uint16Array(N * K);
  for (let i = 0; i < bits.length; i++) bits[i] = 0x3c00 + ((i * 2654435761) >>> 22); // bf16 in [2^-7, 2^-6)
  const packed: I32 = dev.upload(new Int32Array(bits.buffer));
  const wide: F32 = dev.alloc('f32', N * K);
  dev.kernels.widenBf16(wide, packed, { n: N * K });
  const a = dev.upload(Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)));
  const c = dev.alloc('f32', M * N);
  const variants: Array<[string, number, () => void]> = [
    ['matmulBf16', 2 * N * K, () => dev.kernels.matmulBf16(c, a, packed, { M, N, K, accumulate: false })],
    [
      'widen + matmul',
      2 * N * K,
      () => {
        dev.kernels.widenBf16(wide, packed, { n: N * K });
        dev.kernels.matmul(c, a, wide, { M, N, K, transA: false, transB: true, accumulate: false });
      },
    ],
    [
      'matmul (f32)',
      4 * N * K,
      () => dev.kernels.matmul(c, a, wide, { M, N, K, transA: false, transB: true, accumulate: false }),
    ],
  ];
  for (const [variant, bytes, run] of variants) {
    run(); // warm-up
    const c0 = cpu();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) run();
    const wall = (performance.now() - t0) / 1000 / reps;
    const cpuS = (cpu() - c0) / reps;
    console.log(
      `${name.padEnd(38)} ${variant.padEnd(15)} ${(wall * 1e3).toFixed(2).padStart(8)} ms wall ` +
        `${(cpuS * 1e3).toFixed(2).padStart(8)} ms CPU  ${((2 * M * N * K) / wall / 1e9).toFixed(2).padStart(6)} ` +
        `GFLOP/s  ${(bytes / wall / 1e9).toFixed(2).padStart(6)} GB/s of weights  (load ${load()})`,
    );
  }
  for (const t of [packed, wide, a, c]) dev.free(t);
}
await dev.dispose();
