#!/usr/bin/env node
// Builds dist/, the JavaScript the npm package runs (`npm run build`; `npm pack` and `npm publish` run it first
// through `prepack`). In a source checkout nothing needs it: tests, benches and `bin/monet.mjs` run the TypeScript
// through tsx. dist/ mirrors the source tree, so that paths computed from import.meta.url hold in both:
//   dist/src/**, dist/reference/**   tsc's output (tsconfig.build.json): .js, with .ts imports rewritten to .js, and
//                                    .d.ts declarations
//   dist/wgsl/<name>.wgsl(.js)       each WGSL file, and beside it a module whose default export is its text; the
//                                    emitted `import x from '…/name.wgsl'` lines are pointed at the modules (in
//                                    source, a Node loader hook or esbuild's text loader does this job)
//   dist/asm/build/*.wasm            the AssemblyScript kernels (npm run build:asm)
//   dist/fixtures/**                 the golden fixtures (FIXTURES_DIR of monet-ts/fixtures)
//   dist/src/interp/site-box.iife.js the browser script of `monet inspect site`, bundled here so that the installed
//                                    package does not need esbuild at run time
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const started = Date.now();

function run(cmd, args) {
  execFileSync(process.execPath, [join(root, 'node_modules', ...cmd), ...args], { cwd: root, stdio: 'inherit' });
}

rmSync(dist, { recursive: true, force: true });
run(['typescript', 'bin', 'tsc'], ['-p', 'tsconfig.build.json']);

// WGSL as modules, and the imports pointed at them.
mkdirSync(join(dist, 'wgsl'), { recursive: true });
const wgsl = readdirSync(join(root, 'wgsl')).filter((f) => f.endsWith('.wgsl'));
for (const f of wgsl) {
  const text = readFileSync(join(root, 'wgsl', f), 'utf8');
  writeFileSync(join(dist, 'wgsl', f), text);
  writeFileSync(join(dist, 'wgsl', `${f}.js`), `export default ${JSON.stringify(text)};\n`);
}
const WGSL_IMPORT = /(\bfrom\s+['"][^'"]+\.wgsl)(['"])/g;
let rewritten = 0;
function rewriteWgslImports(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) rewriteWgslImports(p);
    else if (e.name.endsWith('.js')) {
      const text = readFileSync(p, 'utf8');
      const out = text.replace(WGSL_IMPORT, (_, head, quote) => {
        rewritten++;
        return `${head}.js${quote}`;
      });
      if (out !== text) writeFileSync(p, out);
    }
  }
}
rewriteWgslImports(join(dist, 'src'));
if (rewritten < wgsl.length - 1)
  throw new Error(`build-dist: rewrote ${rewritten} WGSL imports for ${wgsl.length} WGSL files; expected one each`);

// The kernels, built if they are not current.
execFileSync(process.execPath, [join(root, 'scripts', 'build-asm.mjs')], { cwd: root, stdio: 'inherit' });
cpSync(join(root, 'asm', 'build'), join(dist, 'asm', 'build'), {
  recursive: true,
  filter: (src) => !src.endsWith('.wat') && !src.endsWith('.map'),
});

// The golden fixtures, for backend authors' own tests.
cpSync(join(root, 'fixtures'), join(dist, 'fixtures'), { recursive: true });

// The site's browser script.
const { build } = await import('esbuild');
const { nodeStubPlugin } = await import(pathToFileURL(join(dist, 'src', 'browser-bundle.js')).href);
const box = await build({
  entryPoints: [join(root, 'src', 'interp', 'site-box.ts')],
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  logLevel: 'silent',
  plugins: [nodeStubPlugin()],
  external: ['webgpu'],
  loader: { '.wgsl': 'text' },
});
writeFileSync(join(dist, 'src', 'interp', 'site-box.iife.js'), box.outputFiles[0].text);

console.log(`dist: built in ${((Date.now() - started) / 1000).toFixed(1)} s (${wgsl.length} WGSL modules)`);
