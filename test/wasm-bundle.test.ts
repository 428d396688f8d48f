// The WASM backend bundles for browsers: esbuild (platform browser) packs the device, the shared layers and the
// case runner into one ES module with no Node built-ins; that bundle, given the .wasm bytes (as a page would fetch
// them), runs a fixture and passes it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { build } from 'esbuild';
import { formatReports, runFixture } from '../src/fixtures/checker.ts';
import { loadFixture } from '../src/fixtures/format.ts';
import { readWasmBytes } from '../src/backend/wasm/node.ts';
import type { CaseBackend } from '../src/backend/case.ts';

const ROOT = join(import.meta.dirname, '..');

test('device + layers + case runner bundle for the browser and run a fixture from the bundle', async () => {
  const entry = `
    import { createWasmDeviceFromBytes } from ${JSON.stringify(join(ROOT, 'src/backend/wasm/device.ts'))};
    import { deviceCaseBackend } from ${JSON.stringify(join(ROOT, 'src/backend/run-case.ts'))};
    export async function backend(bytes) { return deviceCaseBackend(await createWasmDeviceFromBytes(bytes)); }`;
  const out = await build({
    stdin: { contents: entry, resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  const code = out.outputFiles[0].text;
  assert.not.match(
    code,
    /from\s*["']node:|require\(["'](fs|path|url|v8|node:)/,
    'the browser bundle pulls in a Node built-in',
  );
  const mod = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as {
    backend(b: unknown): Promise<CaseBackend>;
  };
  const b = await mod.backend({ plain: readWasmBytes().plain });
  const f = loadFixture(join(ROOT, 'fixtures/external/pytorch/monet-vd/train.safetensors'));
  const r = await runFixture(f, b, { preset: 'f32' });
  assert.ok(r.pass, formatReports([r], { failuresOnly: true }));
});

test.run();
