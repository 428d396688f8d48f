// `node --import ./src/backend/webgpu/register-wgsl.mjs ...` (or import it first): teaches Node to import .wgsl
// files as text. tsx alone cannot; a bundler does it with esbuild's text loader instead.
import { register } from 'node:module';
register('./wgsl-hooks.mjs', import.meta.url);
