// Node module-loader hook: `import src from '.../x.wgsl'` yields the file's text as the default export, the same
// thing esbuild's text loader (`--loader:.wgsl=text`) does when the backend is bundled for browsers.
// Registered by ./register-wgsl.mjs (tests, CLI, benches); see docs/webgpu.md.
import { readFile } from 'node:fs/promises';

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.wgsl')) {
    const text = await readFile(new URL(url), 'utf8');
    return { format: 'module', shortCircuit: true, source: `export default ${JSON.stringify(text)};\n` };
  }
  return nextLoad(url, context);
}
