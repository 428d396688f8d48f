// Every committed fixture (the reference's own under fixtures/<kind>/ and those written by other tools under
// fixtures/external/) passes on the reference backend; backward accumulates into pre-filled gradients; the
// committed set covers the contract and is what `npm run fixtures` produces.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join, relative } from 'node:path';
import { existsSync } from 'node:fs';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { formatReports, runFixture } from '../src/fixtures/checker.ts';
import { loadFixture, parseFixture, type Fixture } from '../src/fixtures/format.ts';
import { CASES, generateCase } from '../src/fixtures/generate.ts';
import { FIXTURE_KINDS } from '../src/kinds/index.ts';
import { createReferenceBackend } from '../src/fixtures/reference-cases.ts';
import { Rng } from '../reference/rng.ts';
import { f64, numel, type TensorMap } from '../src/tensor.ts';

const ROOT = join(import.meta.dirname, '..');
const all = collectFixtureFiles([join(ROOT, 'fixtures')]);
const fixtures: Fixture[] = all.files.map((f) => loadFixture(f));
const own = fixtures.filter((f) => !relative(ROOT, f.source).startsWith(join('fixtures', 'external')));
const external = fixtures.filter((f) => !own.includes(f));
const backendP = createReferenceBackend();

test('the committed fixtures load', () => {
  assert.equal(all.errors, []);
  assert.ok(own.length >= 30, `expected the generated set under fixtures/<kind>/, found ${own.length}`);
  if (existsSync(join(ROOT, 'fixtures', 'external')))
    assert.ok(external.length > 0, 'fixtures/external/ holds no fixtures');
});

test('every committed fixture passes on the reference backend (f64 preset), external ones included', async () => {
  const backend = await backendP;
  const failed: string[] = [];
  for (const f of fixtures) {
    const r = await runFixture(f, backend, { preset: 'f64' });
    if (!r.pass) failed.push(formatReports([r], { failuresOnly: true }));
  }
  assert.equal(failed, [], failed.join('\n'));
});

test('gradient accumulation: with grad.* pre-filled, the reference returns init + computed', async () => {
  const backend = await backendP;
  const rng = new Rng(7);
  let checked = 0;
  for (const f of fixtures) {
    if (f.forwardOnly) continue;
    const gradInit: TensorMap = new Map();
    for (const [name, t] of f.expected)
      if (name.startsWith('grad.')) gradInit.set(name, f64(t.shape, rng.normals(numel(t.shape))));
    const r = await runFixture(f, backend, { preset: 'f64', gradInit });
    assert.ok(r.pass, `${f.source} with pre-filled gradients:\n${formatReports([r], { failuresOnly: true })}`);
    checked++;
  }
  assert.ok(checked >= 30, `only ${checked} fixtures with gradients`);
});

test('the generated set covers the contract', () => {
  const kinds = new Set(own.map((f) => f.kind));
  for (const k of FIXTURE_KINDS) assert.ok(kinds.has(k), `no fixture of kind '${k}'`);
  const cfg = (f: Fixture) => f.case.config as Record<string, unknown>;
  for (const k of ['peer', 'monet-router', 'monet-hd', 'monet-vd']) {
    const modes = new Set(own.filter((f) => f.kind === k).map((f) => cfg(f).mode));
    assert.ok(modes.has('train') && modes.has('eval'), `${k}: expected train and eval fixtures, found ${[...modes]}`);
  }
  for (const f of own.filter((f) => f.kind.startsWith('monet'))) {
    assert.ok(
      (cfg(f).moe_heads as number) >= 2 && (cfg(f).moe_experts as number) >= 8,
      `${f.source}: Monet fixtures need H ≥ 2 and √N ≥ 8`,
    );
  }
  const lms = own.filter((f) => f.kind === 'lm').map(cfg);
  for (const ffn of ['dense', 'smoe', 'peer', 'monet', 'topk'])
    assert.ok(
      lms.some((c) => c.ffn === ffn),
      `no lm fixture with ffn '${ffn}'`,
    );
  for (const d of ['horizontal', 'vertical'])
    assert.ok(
      lms.some((c) => c.ffn === 'monet' && c.moe_decompose === d && c.moe_groups === 2),
      `no Monet lm (${d}) with moe_groups 2`,
    );
  for (const p of ['ffn', 'hidden'])
    assert.ok(
      lms.some((c) => c.ffn === 'topk' && c.topk_placement === p),
      `no TopK lm with placement '${p}'`,
    );
  // Aux losses switched on where the kind has them.
  for (const f of own.filter((f) => ['smoe', 'monet-hd', 'monet-vd'].includes(f.kind))) {
    if (f.source.includes('noaux')) continue;
    const aux = cfg(f).aux as Record<string, number>;
    assert.ok(
      Object.values(aux).every((v) => v > 0),
      `${f.source}: aux coefficients should be on, found ${JSON.stringify(aux)}`,
    );
  }
  // Every case that routes records its margin, at least 1e-3; every fixture records its generator and seed.
  for (const f of own) {
    assert.ok(f.metadata.generator?.startsWith('reference@'), `${f.source}: generator metadata`);
    assert.ok(f.metadata.seed !== undefined, `${f.source}: seed metadata`);
    if (f.kind !== 'dense-ffn' && !(f.kind === 'lm' && cfg(f).ffn === 'dense')) {
      assert.ok(f.minMargin !== undefined && f.minMargin >= 1e-3, `${f.source}: min_margin ${f.minMargin}`);
    }
  }
});

test('npm run fixtures reproduces the committed set (same seeds, same inputs, deterministic bytes)', async () => {
  assert.is(own.length, CASES.length, 'one committed file per generator case');
  for (const spec of CASES) {
    const path = join(ROOT, 'fixtures', spec.kind, `${spec.name}.safetensors`);
    const committed = own.find((f) => f.source === path);
    assert.ok(committed, `${path} is not committed (run npm run fixtures)`);
    const g = await generateCase(spec, 'test');
    assert.is(String(g.seed), committed.metadata.seed, `${spec.kind}/${spec.name}: seed`);
    const again = await generateCase(spec, 'test');
    assert.equal(again.bytes, g.bytes, `${spec.kind}/${spec.name}: generation is deterministic`);
    const regenerated = parseFixture(g.bytes, 'regenerated');
    for (const [name, t] of committed.case.tensors) {
      const u = regenerated.case.tensors.get(name);
      assert.ok(u, `${spec.kind}/${spec.name}: ${name} not regenerated`);
      assert.equal(
        Array.from(u.data as ArrayLike<number>),
        Array.from(t.data as ArrayLike<number>),
        `${spec.kind}/${spec.name}: ${name} differs from the committed file; run npm run fixtures`,
      );
    }
  }
});

test.run();
