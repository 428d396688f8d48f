// Every committed fixture — the reference's own (fixtures/<kind>/) and those written by PyTorch
// (fixtures/external/) — passes on the WASM backend through the registry entry `monet check --backend wasm` uses,
// with that entry's ONE tolerance preset (`f32`: atol = rtol = 16·√K·2⁻²³, K the case's longest reduction; see
// src/fixtures/checker.ts) and no per-tensor loosening; idx.* (routing) exactly. Backward accumulates into
// pre-filled gradients. The relaxed-SIMD build (fused multiply-add) passes the same fixtures.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { formatReports, runFixture } from '../src/fixtures/checker.ts';
import { loadFixture, type Fixture } from '../src/fixtures/format.ts';
import { getBackendEntry } from '../src/backend/registry.ts';
import type { CaseBackend } from '../src/backend/case.ts';
import { deviceCaseBackend } from '../src/backend/run-case.ts';
import { createWasmDevice, enableRelaxedSimd, readWasmBytes } from '../src/backend/wasm/node.ts';
import { f64, numel, type TensorMap } from '../src/tensor.ts';
import { IN_CI, testUnless } from './skip.ts';

const ROOT = join(import.meta.dirname, '..');
const entry = getBackendEntry('wasm');
const files = collectFixtureFiles([join(ROOT, 'fixtures')]).files;
const fixtures: Fixture[] = files.map((f) => loadFixture(f));

let backendP: Promise<CaseBackend> | null = null;
const backend = () => (backendP ??= entry.create());

test('the wasm registry entry uses the f32 preset with no per-tensor loosening; fixtures of every kind exist', () => {
  assert.is(entry.preset, 'f32');
  assert.equal(entry.overrides ?? [], []);
  assert.ok(files.length >= 60, `expected the committed fixtures, found ${files.length}`);
  assert.ok(
    fixtures.some((f) => f.source.includes(join('fixtures', 'external'))),
    'no external (PyTorch) fixtures found',
  );
});

for (const f of fixtures) {
  test(`${f.source.slice(ROOT.length + 1)} passes on wasm`, async () => {
    const b = await backend();
    assert.ok(b.supports(f.kind), `wasm does not support kind '${f.kind}'`);
    const r = await runFixture(f, b, { preset: entry.preset, overrides: entry.overrides });
    assert.ok(r.pass, formatReports([r], { failuresOnly: true }));
  });
}

test('backward accumulates into pre-filled gradients on wasm (every fixture with gradients)', async () => {
  const b = await backend();
  let seed = 99;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  };
  let checked = 0;
  for (const f of fixtures) {
    if (f.forwardOnly) continue;
    const gradInit: TensorMap = new Map();
    for (const [name, t] of f.expected)
      if (name.startsWith('grad.')) gradInit.set(name, f64(t.shape, Array.from({ length: numel(t.shape) }, rnd)));
    const r = await runFixture(f, b, { preset: entry.preset, gradInit });
    assert.ok(r.pass, `${f.source} with pre-filled gradients:\n${formatReports([r], { failuresOnly: true })}`);
    checked++;
  }
  assert.ok(checked >= 30, `only ${checked} fixtures with gradients`);
});

enableRelaxedSimd(); // Node 20: V8 validates relaxed SIMD only behind this flag
const relaxed = readWasmBytes().relaxed;
// An engine that does not validate the relaxed build skips this test outside CI; under CI=true it must run.
const relaxedMissing =
  (relaxed && WebAssembly.validate(relaxed)) || IN_CI ? null : 'this engine does not validate the relaxed-SIMD build';

testUnless(relaxedMissing)('the relaxed-SIMD build passes every fixture too', async () => {
  const dev = await createWasmDevice({ relaxed: true });
  assert.ok(dev.name.includes('relaxed'), `expected the relaxed build, got ${dev.name}`);
  const b = deviceCaseBackend(dev, 'wasm-relaxed');
  const failed: string[] = [];
  for (const f of fixtures) {
    const r = await runFixture(f, b, { preset: entry.preset });
    if (!r.pass) failed.push(formatReports([r], { failuresOnly: true }));
  }
  assert.equal(failed, [], failed.join('\n'));
});

test.run();
