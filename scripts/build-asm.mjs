#!/usr/bin/env node
// Builds the AssemblyScript kernels (asm/) into asm/build/: kernels.wasm (WebAssembly SIMD) and
// kernels-relaxed.wasm (plus relaxed SIMD: fused multiply-add). Runs automatically from npm's prepare / pretest /
// prestart, and skips the work when the outputs are newer than every asm/*.ts source.
//   node scripts/build-asm.mjs [--force]
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asmDir = join(root, 'asm');
const outDir = join(asmDir, 'build');
const sources = readdirSync(asmDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => join(asmDir, f));
const builds = [
  { out: 'kernels.wasm', features: 'simd' },
  { out: 'kernels-relaxed.wasm', features: 'simd,relaxed-simd' },
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
for (const b of builds) {
  const out = join(outDir, b.out);
  if (!force && existsSync(out) && statSync(out).mtimeMs >= newestSource) continue;
  const t0 = Date.now();
  // --runtime stub: no garbage collector; the JS loader owns all memory above __heap_base.
  execFileSync(
    process.execPath,
    [
      asc,
      join(asmDir, b.entry ?? 'index.ts'),
      ...(b.features ? ['--enable', b.features] : []),
      '-O3',
      '--runtime',
      'stub',
      '--noAssert',
      '--outFile',
      out,
    ],
    { stdio: 'inherit', cwd: root },
  );
  console.log(
    `build-asm: asm/build/${b.out} (${b.features || 'scalar'}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}
