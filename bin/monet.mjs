#!/usr/bin/env node
// The `monet` command. The package is written in TypeScript and run through tsx's loader, so there is no build
// step between editing a file and running it.
import { register } from 'tsx/esm/api';
register();
// WGSL shaders are imported as text (src/backend/webgpu/wgsl-hooks.mjs).
await import('../src/backend/webgpu/register-wgsl.mjs');
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
