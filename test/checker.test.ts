// The one checker and the fixture loader's validation, on small hand-made tensors (no backend involved).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  checkCase,
  compareTensor,
  F32_EPS,
  formatReports,
  presetTolerance,
  runFixture,
  toleranceFor,
  unravel,
  validateOverrides,
} from '../src/fixtures/checker.ts';
import { FIXTURE_FORMAT, parseFixture, serializeFixture } from '../src/fixtures/format.ts';
import { FixtureError } from '../src/fixtures/format.ts';
import { createReferenceBackend, runReferenceCase } from '../src/fixtures/reference-cases.ts';
import { getBackendEntry } from '../src/backend/registry.ts';
import type { CaseBackend } from '../src/backend/case.ts';
import { f64, i32, u8, type Tensor, type TensorMap } from '../src/tensor.ts';
import { parseSafetensors, serializeSafetensors } from '../src/safetensors.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const F64 = { ...presetTolerance('f64'), preset: 'f64' };
const EXACT = { ...presetTolerance('exact'), preset: 'exact' };

test('presets follow their documented formulas', () => {
  assert.equal(presetTolerance('exact'), { atol: 0, rtol: 0 });
  assert.equal(presetTolerance('f64'), { atol: 1e-10, rtol: 1e-9 });
  const t = presetTolerance('f32', 64);
  assert.ok(Math.abs(t.atol - 16 * 8 * F32_EPS) < 1e-20 && t.rtol === t.atol);
  assert.ok(presetTolerance('f32', 4096).atol > presetTolerance('f32', 64).atol, 'f32 budget grows with K');
});

test('the rule |a − e| ≤ atol + rtol·|e| at and past the edge', () => {
  const e = f64([2], [1, 1000]);
  const budget = (v: number) => 1e-10 + 1e-9 * v;
  const inside = compareTensor('out.y', f64([2], [1 + 0.9 * budget(1), 1000 - 0.9 * budget(1000)]), e, F64);
  assert.is(inside.status, 'pass');
  assert.ok(inside.budgetShare! > 0.85 && inside.budgetShare! < 0.95, `share ${inside.budgetShare}`);
  const outside = compareTensor('out.y', f64([2], [1, 1000 + 1.5 * budget(1000)]), e, F64);
  assert.is(outside.status, 'fail');
  assert.equal(outside.where, [1]);
  assert.is(outside.failCount, 1);
});

test('a corrupted value fails, naming the tensor and its multi-index', () => {
  const e = f64(
    [2, 3, 4],
    Array.from({ length: 24 }, (_, i) => Math.sin(i)),
  );
  const a = f64([2, 3, 4], e.data as Float64Array);
  (a.data as Float64Array)[1 * 12 + 2 * 4 + 3] += 1e-6; // element [1, 2, 3]
  const r = checkCase(
    new Map([
      ['grad.in.x', e],
      ['out.y', e],
    ]),
    new Map([
      ['grad.in.x', a],
      ['out.y', e],
    ]),
    {
      source: 'mem',
      kind: 'dense-ffn',
      backend: 't',
      preset: 'f64',
      reduction: 1,
    },
  );
  assert.is(r.pass, false);
  const bad = r.tensors.find((t) => t.status === 'fail')!;
  assert.is(bad.name, 'grad.in.x');
  assert.equal(bad.where, [1, 2, 3]);
  assert.ok(Math.abs(bad.maxAbsError! - 1e-6) < 1e-12);
  assert.is(r.tensors.find((t) => t.name === 'out.y')!.status, 'pass');
  const table = formatReports([r]);
  assert.match(table, /grad\.in\.x\s+FAIL\s+1\.00e-6\s+\[1,2,3\]/);
});

test('indices and masks are compared exactly, whatever the preset', () => {
  const tol = toleranceFor('idx.topk', { kind: 'smoe', preset: 'f32', reduction: 1e6 });
  assert.equal([tol.atol, tol.rtol], [0, 0]);
  const e = i32([2, 2], [3, 1, 0, 2]);
  const asI64: Tensor = { dtype: 'I64', shape: [2, 2], data: BigInt64Array.from([3n, 1n, 0n, 2n]) };
  assert.is(compareTensor('idx.topk', asI64, e, EXACT).status, 'pass', 'I64 vs I32 compare by value');
  const r = compareTensor('idx.topk', i32([2, 2], [3, 1, 2, 0]), e, EXACT);
  assert.is(r.status, 'fail');
  assert.equal(r.where, [1, 0]);
  assert.is(compareTensor('idx.mask', u8([3], [1, 0, 1]), u8([3], [1, 1, 1]), EXACT).status, 'fail');
});

test('NaN, shapes, scalars', () => {
  assert.is(compareTensor('out.y', f64([1], [NaN]), f64([1], [0]), F64).status, 'fail');
  assert.is(compareTensor('out.y', f64([1], [0]), f64([1], [NaN]), F64).status, 'fail');
  assert.is(
    compareTensor('out.loss', f64([], [2]), f64([1], [2]), F64).status,
    'pass',
    '0-d and (1,) scalars are the same',
  );
  const s = compareTensor('out.y', f64([2, 3]), f64([3, 2]), F64);
  assert.is(s.status, 'fail');
  assert.match(s.note!, /shape \[2,3\] produced, \[3,2\] expected/);
});

test('missing tensors fail; optional ones are unchecked; extra ones are reported', () => {
  const e: TensorMap = new Map([
    ['out.y', f64([1], [1])],
    ['out.g1', f64([1], [1])],
    ['grad.in.x', f64([1], [1])],
  ]);
  const a: TensorMap = new Map([
    ['out.y', f64([1], [1])],
    ['grad.param.w', f64([1], [1])],
  ]);
  const r = checkCase(e, a, {
    source: 'mem',
    kind: 'k',
    backend: 't',
    preset: 'f64',
    reduction: 1,
    optional: new Set(['out.g1']),
  });
  const st = Object.fromEntries(r.tensors.map((t) => [t.name, t.status]));
  assert.equal(st, {
    'out.y': 'pass',
    'out.g1': 'unchecked',
    'grad.in.x': 'fail',
    'grad.param.w': 'extra',
  });
  assert.is(r.pass, false);
});

test('overrides need a reason, and the reason is printed', () => {
  assert.throws(() => validateOverrides([{ kind: '*', tensor: 'out.y', atol: 1, rtol: 1, reason: '' }]), /reason/);
  const overrides = [
    { kind: 'lm', tensor: 'grad.param.*', atol: 1e-3, rtol: 0, reason: 'float32 attention softmax over long rows' },
  ];
  const t = toleranceFor('grad.param.model.norm.weight', { kind: 'lm', preset: 'f64', reduction: 1, overrides });
  assert.equal([t.atol, t.rtol, t.preset], [1e-3, 0, 'override']);
  assert.is(
    toleranceFor('grad.param.x', { kind: 'smoe', preset: 'f64', reduction: 1, overrides }).preset,
    'f64',
    'kind must match',
  );
  const r = checkCase(new Map([['grad.param.w', f64([1], [1])]]), new Map([['grad.param.w', f64([1], [1.0005])]]), {
    source: 'mem',
    kind: 'lm',
    backend: 't',
    preset: 'f64',
    reduction: 1,
    overrides,
  });
  assert.is(r.pass, true);
  assert.match(formatReports([r]), /float32 attention softmax over long rows/);
});

test('unravel gives row-major multi-indices', () => {
  assert.equal(unravel(0, [2, 3]), [0, 0]);
  assert.equal(unravel(5, [2, 3]), [1, 2]);
  assert.equal(unravel(7, [2, 2, 2]), [1, 1, 1]);
  assert.equal(unravel(0, []), []);
});

// ---- the loader: a hand-built dense-ffn fixture (relu: up_proj (F, d), down_proj (d, F)) ----

const d = 4,
  F = 6,
  T = 3;
function denseInputs(): TensorMap {
  return new Map<string, Tensor>([
    ['in.x', f64([T, d])],
    ['in.dy', f64([T, d])],
    ['param.up_proj.weight', f64([F, d])],
    ['param.down_proj.weight', f64([d, F])],
  ]);
}
const denseConfig = { hidden_size: d, intermediate_size: F, activation: 'relu' };

test('loader: config vs tensor shapes, missing keys; a tensor the kind does not define is refused', () => {
  const results: TensorMap = new Map([['out.y', f64([T, d])]]);
  const meta = { format: FIXTURE_FORMAT, kind: 'dense-ffn', config: JSON.stringify(denseConfig) };
  const fx = parseFixture(serializeSafetensors(new Map([...denseInputs(), ...results]), meta), 'mem.st');
  assert.is(fx.forwardOnly, true);
  // Each of these would have gone unchecked (or unread) if the loader only reported it: refused, naming the tensor.
  for (const [name, shape, want] of [
    ['param.stray', [1], /tensor 'param\.stray': is not an input of a 'dense-ffn' case .*expected param\.up_proj/],
    ['notes', [1], /tensor 'notes': unknown prefix; expected one of in\. param\./],
    ['out.h_pre', [T, F], /tensor 'out\.h_pre': is not a result a 'dense-ffn' case with this config produces/],
  ] as const) {
    const extra = new Map([...denseInputs(), ...results, [name, f64([...shape])]]);
    assert.throws(
      () => parseFixture(serializeSafetensors(extra, meta), 'x.st'),
      (e: Error) => e instanceof FixtureError && want.test(e.message),
      name,
    );
  }

  const wrong = serializeFixture({
    kind: 'dense-ffn',
    config: { ...denseConfig, hidden_size: 5 },
    inputs: denseInputs(),
    results,
  });
  assert.throws(
    () => parseFixture(wrong, 'w.st'),
    (e: Error) =>
      e instanceof FixtureError &&
      /w\.st: tensor '(in\.x|param\.up_proj\.weight)'/.test(e.message) &&
      /hidden_size=5/.test(e.message),
  );
  const missing = serializeFixture({
    kind: 'dense-ffn',
    config: { hidden_size: d, activation: 'relu' },
    inputs: denseInputs(),
    results,
  });
  assert.throws(
    () => parseFixture(missing, 'm.st'),
    /config\.intermediate_size: expected an integer ≥ 1, found nothing \(key missing\)/,
  );
  const badGrad = serializeFixture({
    kind: 'dense-ffn',
    config: denseConfig,
    inputs: denseInputs(),
    results: new Map([['grad.param.nope', f64([1])]]),
  });
  assert.throws(
    () => parseFixture(badGrad, 'g.st'),
    /tensor 'grad\.param\.nope': is not a result a 'dense-ffn' case with this config produces; expected grad\.param/,
  );
});

test('loader: format version, kind and metadata errors name what was found and expected', () => {
  const mk = (meta: Record<string, string>) => serializeSafetensors(new Map([['in.x', f64([1, 1])]]), meta);
  assert.throws(
    () => parseFixture(mk({ format: 'monet-ts-fixture/2', kind: 'topk', config: '{}' }), 'v.st'),
    /format version 2 .* reads version 1 \('monet-ts-fixture\/1'\)/,
  );
  assert.throws(
    () => parseFixture(mk({ format: 'other/1', kind: 'topk', config: '{}' })),
    /expected 'monet-ts-fixture\/1'/,
  );
  assert.throws(
    () => parseFixture(mk({ format: FIXTURE_FORMAT, kind: 'moe', config: '{}' })),
    /kind is 'moe'; expected one of dense-ffn/,
  );
  assert.throws(
    () => parseFixture(mk({ format: FIXTURE_FORMAT, kind: 'topk', config: '{oops' })),
    /config is not valid JSON/,
  );
  assert.throws(() => parseFixture(mk({ kind: 'topk', config: '{}' })), /__metadata__ has no 'format'/);
});

test('loader: train-mode layer files may omit state.* (all of it), eval-mode files may not', () => {
  const strip = (file: string) => {
    const { metadata, tensors } = parseSafetensors(readFileSync(join(import.meta.dirname, '..', 'fixtures', file)));
    for (const n of [...tensors.keys()]) if (n.startsWith('state.')) tensors.delete(n);
    delete metadata.checksum; // a file as written without state.* (and without a checksum)
    return serializeSafetensors(tensors, metadata);
  };
  // the loader supplies PyTorch's initial statistics, so every backend receives the state (the wasm backend threw
  // "missing tensor state.norm1.running_mean" on such a file before)
  const train = parseFixture(strip('monet-router/train.safetensors'), 'train.st');
  const held = [...train.case.tensors].filter(([n]) => n.startsWith('state.'));
  assert.equal(
    held.map(([n, t]) => [n, [...t.data]]),
    [
      ['state.norm1.running_mean', [0, 0]],
      ['state.norm1.running_var', [1, 1]],
      ['state.norm2.running_mean', [0, 0]],
      ['state.norm2.running_var', [1, 1]],
    ],
  );
  // part of the state is a lost tensor, not an omitted state
  const partial = (() => {
    const path = join(import.meta.dirname, '..', 'fixtures', 'monet-router', 'train.safetensors');
    const { metadata, tensors } = parseSafetensors(readFileSync(path));
    tensors.delete('state.norm2.running_var');
    delete metadata.checksum;
    return serializeSafetensors(tensors, metadata);
  })();
  assert.throws(
    () => parseFixture(partial, 'part.st'),
    (e: Error) =>
      e instanceof FixtureError &&
      /part\.st: state incomplete: state\.norm2\.running_var missing while state\.norm1\.running_mean, .* present/.test(
        e.message,
      ) &&
      /a train-mode 'monet-router' file holds all of its state or none/.test(e.message),
  );
  assert.throws(
    () => parseFixture(strip('monet-router/eval.safetensors'), 'eval.st'),
    /eval\.st: tensor 'state\.norm1\.running_mean' is missing/,
  );
  assert.throws(
    () => parseFixture(strip('lm/peer.safetensors'), 'lm.st'),
    /lm\.st: tensor 'state\.model\.layers\.1\.mlp\.query_bn\.running_mean' is missing/,
  );
});

test('a train-mode file without state.* runs on the reference and wasm from the initial statistics', async () => {
  const path = join(import.meta.dirname, '..', 'fixtures', 'peer', 'train_relu.safetensors');
  const src = parseFixture(readFileSync(path), path);
  // the same case from the initial statistics: expected values recomputed by the reference, then state.* left out
  const inputs = new Map([...src.case.tensors].filter(([n]) => !n.startsWith('state.')));
  const init = parseFixture(
    serializeFixture({ kind: 'peer', config: src.case.config, inputs, results: src.expected, checksum: false }),
    'no-state',
  );
  const results = new Map([...runReferenceCase(init.case)].filter(([n]) => src.expected.has(n)));
  const fx = parseFixture(serializeFixture({ kind: 'peer', config: src.case.config, inputs, results }), 'no-state');
  assert.not.ok([...fx.case.tensors.keys()].some((n) => !src.case.tensors.has(n)));
  for (const make of [createReferenceBackend, getBackendEntry('wasm').create] as (() => Promise<CaseBackend>)[]) {
    const backend = await make();
    const r = await runFixture(fx, backend, { preset: backend.name === 'reference' ? 'f64' : 'f32' });
    assert.is(r.error, undefined, `${backend.name}: ${r.error}`);
    assert.ok(r.pass, `${backend.name} passes`);
    await backend.dispose?.();
  }
});

test('loader: a deeply nested config value gives a FixtureError, not a stack overflow', () => {
  const deep = '['.repeat(100000) + ']'.repeat(100000);
  const meta = {
    format: FIXTURE_FORMAT,
    kind: 'dense-ffn',
    config: `{"hidden_size": ${deep}, "intermediate_size": 6, "activation": "relu"}`,
  };
  assert.throws(
    () => parseFixture(serializeSafetensors(denseInputs(), meta), 'deep.st'),
    (e: Error) =>
      e instanceof FixtureError && /config\.hidden_size: expected an integer ≥ 1, found \[\[…\]\]/.test(e.message),
  );
  const meta2 = { ...meta, config: deep };
  assert.throws(
    () => parseFixture(serializeSafetensors(denseInputs(), meta2), 'deep2.st'),
    (e: Error) => e instanceof FixtureError && /config must be a JSON object, found \[\[…\]\]/.test(e.message),
  );
});

test('runFixture: a backend must add into pre-filled gradients (gradInit)', async () => {
  const e: TensorMap = new Map([
    ['out.y', f64([T, d])],
    [
      'grad.in.x',
      f64(
        [T, d],
        Array.from({ length: T * d }, (_, i) => i),
      ),
    ],
    ['grad.param.up_proj.weight', f64([F, d])],
    ['grad.param.down_proj.weight', f64([d, F])],
  ]);
  const fx = parseFixture(
    serializeFixture({ kind: 'dense-ffn', config: denseConfig, inputs: denseInputs(), results: e }),
  );
  const init = new Map([['grad.in.x', f64([T, d], new Array(T * d).fill(0.5))]]);
  const make = (accumulates: boolean): CaseBackend => ({
    name: accumulates ? 'adds' : 'overwrites',
    supports: () => true,
    run: async (_c, opts) => {
      const g = f64(
        [T, d],
        Array.from({ length: T * d }, (_, i) => i + (accumulates ? 0.5 : 0)),
      );
      assert.ok(opts?.gradInit, 'gradInit passed through');
      return new Map([
        ['out.y', f64([T, d])],
        ['grad.in.x', g],
        ['grad.param.up_proj.weight', f64([F, d])],
        ['grad.param.down_proj.weight', f64([d, F])],
      ]);
    },
  });
  assert.is((await runFixture(fx, make(true), { preset: 'f64', gradInit: init })).pass, true);
  const r = await runFixture(fx, make(false), { preset: 'f64', gradInit: init });
  assert.is(r.pass, false);
  assert.is(r.tensors.find((t) => t.status === 'fail')!.name, 'grad.in.x');
  const uns = await runFixture(
    fx,
    { name: 'none', supports: () => false, run: async () => new Map() },
    { preset: 'f64' },
  );
  assert.is(uns.pass, false);
  assert.match(uns.unsupported!, /does not support kind 'dense-ffn'/);
});

test.run();
