// The plain-JS device (src/backend/js/) is the executable definition of every kernel and the oracle the WASM and
// WebGPU kernel tests compare with; so it must itself be right: every committed fixture (own + PyTorch) passes on it,
// through the same shared layers and case runner, with the checker's f32 preset (its storage is float32).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { formatReports, runFixture } from '../src/fixtures/checker.ts';
import { loadFixture } from '../src/fixtures/format.ts';
import { createJsDevice } from '../src/backend/js/device.ts';
import { deviceCaseBackend } from '../src/backend/run-case.ts';

const ROOT = join(import.meta.dirname, '..');

test('every committed fixture passes on the plain-JS device (f32 preset)', async () => {
  const files = collectFixtureFiles([join(ROOT, 'fixtures')]).files;
  assert.ok(files.length >= 60, `expected the committed fixtures, found ${files.length}`);
  const b = deviceCaseBackend(createJsDevice());
  const failed: string[] = [];
  for (const file of files) {
    const r = await runFixture(loadFixture(file), b, { preset: 'f32' });
    if (!r.pass) failed.push(formatReports([r], { failuresOnly: true }));
  }
  assert.equal(failed, [], failed.join('\n'));
});

test.run();
