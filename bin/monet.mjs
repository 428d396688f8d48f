#!/usr/bin/env node
// The `monet` command. The installed package runs the built JavaScript in dist/ (scripts/build-dist.mjs, made when
// the package is packed). A source checkout runs the TypeScript itself through tsx's loader, so there is no build
// step between editing a file and running it (a stale dist/ there is never used).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/src/cli/main.js', import.meta.url);

async function load() {
  if (existsSync(source)) {
    let tsx;
    try {
      tsx = await import('tsx/esm/api');
    } catch {
      tsx = null; // a checkout without its devDependencies: use dist/ if it was built
    }
    if (tsx) {
      tsx.register();
      // WGSL shaders are imported as text (src/backend/webgpu/wgsl-hooks.mjs).
      await import('../src/backend/webgpu/register-wgsl.mjs');
      return import(source.href);
    }
  }
  if (existsSync(built)) return import(built.href);
  console.error(
    'monet: neither the TypeScript sources with tsx (npm install in a checkout) nor the built dist/ (npm run build) ' +
      'are here',
  );
  process.exit(2);
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2));
