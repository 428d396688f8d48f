// Every committed fixture — the reference's own (fixtures/<kind>/) and those written by PyTorch
// (fixtures/external/) — passes on the WebGPU backend, through the registry entry that `monet check --backend
// webgpu` uses, with that entry's tolerance preset (`f32`: atol = rtol = 16·√K·2⁻²³, K the case's longest
// reduction; see src/fixtures/checker.ts) and no per-tensor loosening. idx.* (routing) must match exactly.
// Also: backward accumulates into pre-filled gradients on the GPU, as on every backend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { formatReports, runFixture } from '../src/fixtures/checker.ts';
import { loadFixture } from '../src/fixtures/format.ts';
import { BackendUnavailable, getBackendEntry } from '../src/backend/registry.ts';
import type { CaseBackend } from '../src/backend/case.ts';
import { f64, numel, type TensorMap } from '../src/tensor.ts';
import { IN_CI, testUnless } from './skip.ts';

const ROOT = join(import.meta.dirname, '..');
const entry = getBackendEntry('webgpu');
const files = collectFixtureFiles([join(ROOT, 'fixtures')]).files;

// Opened once, at registration: without an adapter (outside CI) every test below is a skipped test with the reason.
let opened: CaseBackend | Error;
try {
  opened = await entry.create();
} catch (e) {
  opened = e as Error; // any other error fails each test below with it
}
const why = opened instanceof BackendUnavailable && !IN_CI ? opened.message : null;
const webgpuTest = testUnless(why);

/** The backend; under CI=true a missing adapter fails each test here with the reason, as does any other error. */
function backend(): CaseBackend {
  if (opened instanceof Error) throw opened;
  return opened;
}

test('the webgpu registry entry uses the f32 preset with no per-tensor loosening', () => {
  assert.is(entry.preset, 'f32');
  assert.equal(entry.overrides ?? [], []);
  assert.ok(files.length >= 60, `expected the committed fixtures, found ${files.length}`);
});

for (const file of files) {
  const name = file.slice(ROOT.length + 1);
  webgpuTest(`${name} passes on webgpu`, async () => {
    const b = backend();
    const f = loadFixture(file);
    assert.ok(b.supports(f.kind), `webgpu does not support kind '${f.kind}'`);
    const r = await runFixture(f, b, { preset: entry.preset, overrides: entry.overrides });
    assert.ok(r.pass, formatReports([r], { failuresOnly: true }));
  });
}

webgpuTest('backward accumulates into pre-filled gradients on webgpu (every kind with gradients)', async () => {
  const b = backend();
  const seen = new Set<string>();
  let seed = 99;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  };
  for (const file of files) {
    const f = loadFixture(file);
    if (f.forwardOnly || seen.has(f.kind)) continue;
    seen.add(f.kind);
    const gradInit: TensorMap = new Map();
    for (const [n, t] of f.expected)
      if (n.startsWith('grad.')) gradInit.set(n, f64(t.shape, Array.from({ length: numel(t.shape) }, rnd)));
    const r = await runFixture(f, b, { preset: entry.preset, overrides: entry.overrides, gradInit });
    assert.ok(r.pass, `${file} with pre-filled gradients:\n${formatReports([r], { failuresOnly: true })}`);
  }
  assert.ok(seen.size >= 8, `only ${seen.size} kinds had gradients`);
});

test.run();
