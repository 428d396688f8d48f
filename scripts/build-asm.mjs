#!/usr/bin/env node
// Builds the AssemblyScript kernels (asm/) into asm/build/: kernels.wasm (WebAssembly SIMD) and
// kernels-relaxed.wasm (plus relaxed SIMD: fused multiply-add), each also as a shared-memory build for the device's
// threads (kernels-threads.wasm, kernels-threads-relaxed.wasm: the memory is imported, shared, at most 4 GiB).
// Runs automatically from npm's prepare / pretest / prestart, two compilers at a time, and skips the work when the
// outputs are newer than every asm/*.ts source.
//   node scripts/build-asm.mjs [--force]
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asmDir = join(root, 'asm');
const outDir = join(asmDir, 'build');
const sources = readdirSync(asmDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(asmDir, f));
// The shared builds declare 16 pages (1 MiB) as their minimum memory: src/backend/wasm/device.ts creates the
// shared memory with that size (SHARED_INITIAL_PAGES).
const SHARED = ['--importMemory', '--sharedMemory', '--initialMemory', '16', '--maximumMemory', '65536'];
const builds = [
  { out: 'kernels.wasm', features: 'simd' },
  { out: 'kernels-relaxed.wasm', features: 'simd,relaxed-simd' },
  { out: 'kernels-threads.wasm', features: 'simd,threads', flags: SHARED },
  { out: 'kernels-threads-relaxed.wasm', features: 'simd,relaxed-simd,threads', flags: SHARED },
  // benchmark-only scalar matmul (no SIMD feature), see asm/matmul_scalar.ts and bench/matmul.ts
  { out: 'matmul-scalar.wasm', features: '', entry: 'matmul_scalar.ts' },
];
const newestSource = Math.max(
  ...sources.map((f) => statSync(f).mtimeMs),
  statSync(fileURLToPath(import.meta.url)).mtimeMs,
);
const force = process.argv.includes('--force');
mkdirSync(outDir, { recursive: true });
const asc = join(root, 'node_modules', 'assemblyscript', 'bin', 'asc.js');
if (!existsSync(asc)) {
  console.error(`build-asm: expected the AssemblyScript compiler at ${asc}; run npm install first`);
  process.exit(1);
}
/** Compiles one build; resolves when asc has written it. */
function compile(b) {
  const t0 = Date.now();
  // --runtime stub: no garbage collector; the JS loader owns all memory above __heap_base.
  const args = [
    asc,
    join(asmDir, b.entry ?? 'index.ts'),
    ...(b.features ? ['--enable', b.features] : []),
    ...(b.flags ?? []),
    '-O3',
    '--runtime',
    'stub',
    '--noAssert',
    '--outFile',
    join(outDir, b.out),
  ];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root }, (err, stdout, stderr) => {
      process.stdout.write(stdout);
      process.stderr.write(stderr);
      if (err) return reject(new Error(`build-asm: asm/build/${b.out} failed (${err.message.split('\n')[0]})`));
      const s = ((Date.now() - t0) / 1000).toFixed(1);
      console.log(
        `build-asm: asm/build/${b.out} (${b.features || 'scalar'}${b.flags ? ', shared memory' : ''}) in ${s} s`,
      );
      resolve();
    });
  });
}

const todo = builds.filter((b) => {
  const out = join(outDir, b.out);
  return force || !existsSync(out) || statSync(out).mtimeMs < newestSource;
});
const lanes = Math.max(1, Math.min(2, availableParallelism()));
let next = 0;
try {
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < todo.length) await compile(todo[next++]);
    }),
  );
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
