// The benchmark's plumbing, not its timings (no timing assertion anywhere): option parsing, serialised async cases,
// the matmul correctness gate, parameter counts measured from allocated tensors against the layer shapes written
// out independently (docs/fixtures.md), the measured growth exponents (Monet √N, SMoE N), and the result files.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../bench/run.ts';
import { serial } from '../bench/lib/serial.ts';
import { checkProduct } from '../bench/matmul.ts';
import { logSlope, runScaling, scalingSpec, type ScalingModel } from '../bench/scaling.ts';
import { writeResults, type BenchResults } from '../bench/report.ts';
import { machineInfo } from '../bench/lib/machine.ts';

test('bench options: --quick writes quick.* files; unknown options and bad --only values are refused', () => {
  const q = parseArgs(['--quick']);
  assert.is(q.quick, true);
  assert.is(q.prefix, 'quick');
  assert.equal(parseArgs([]).only, ['matmul', 'layers', 'scaling']);
  assert.is(parseArgs([]).prefix, 'latest');
  assert.throws(() => parseArgs(['--fast']), /unknown option --fast/);
  assert.throws(() => parseArgs(['--only', 'matmul,gemm']), /found 'gemm'/);
  assert.throws(() => parseArgs(['--out']), /--out expects a value/);
});

test('serial: wrapped async calls never overlap, even when started together', async () => {
  let running = 0,
    most = 0;
  const order: number[] = [];
  const make = (id: number) =>
    serial(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 2));
      order.push(id);
      running--;
    });
  const a = make(1),
    b = make(2);
  await Promise.all([a(), b(), a(), b()]);
  assert.is(most, 1);
  assert.equal(order, [1, 2, 1, 2]);
});

test('matmul gate: a correct product passes, a wrong one is refused with the entry', () => {
  const n = 8;
  const A = Float32Array.from({ length: n * n }, (_, i) => ((i * 7) % 5) - 2);
  const B = Float32Array.from({ length: n * n }, (_, i) => ((i * 3) % 7) - 3);
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) for (let p = 0; p < n; p++) C[i * n + j] += A[i * n + p] * B[p * n + j];
  checkProduct('test', (i, j) => C[i * n + j], A, B, n);
  assert.throws(
    () => checkProduct('broken', (i, j) => C[i * n + j] + (i === j ? 1 : 0.5), A, B, n),
    /broken at 8³: C\[\d+,\d+\]/,
  );
});

/** Parameter count of each scaling model written from the shapes in docs/fixtures.md, not from bench code. */
function expectedParams(model: ScalingModel, sqrtN: number): number {
  const s = scalingSpec(model, sqrtN, true);
  const { d } = s;
  if (s.kind === 'monet-hd') return 2 * s.H * s.E * d + s.E * s.m * d + s.E * s.m + d * s.E * s.m + s.E * d;
  if (s.kind === 'monet-vd') {
    const h = (s.E * s.m) / 2;
    return 2 * s.H * s.E * d + 2 * (h * d + h) + 4 * (d / 2) * h + 2 * s.E * (d / 2);
  }
  if (s.kind === 'smoe') return s.E * d + 2 * s.E * s.F * d; // gate + w1, w2 (ReLU², no w3)
  if (s.kind === 'peer') {
    const dq = s.H * s.dk;
    // query, bias, BN affine, sub_keys, w_down, w_up
    return dq * d + dq + 2 * dq + 2 * s.n * (s.dk / 2) + 2 * s.n * s.n * d;
  }
  throw new Error(`no formula for ${model}`);
}

test(
  'scaling (no timing): parameters counted from allocated tensors match the layer shapes; Monet grows with √N, ' +
    'SMoE with N',
  async () => {
    const sqrtNs = [4, 8, 16];
    const run = await runScaling({ quick: true, time: false, sqrtNs });
    for (const r of run.results) {
      assert.is(r.status, 'ok', `${r.model} ${r.sqrtN}²: ${r.reason}`);
      assert.is(r.params, expectedParams(r.model, r.sqrtN), `${r.model} at N = ${r.sqrtN}²`);
      assert.ok(
        r.peakTensorBytes! >= 4 * r.params! * 2,
        `${r.model}: peak tensor bytes hold at least parameters + gradients`,
      );
    }
    const slope = (m: ScalingModel) => logSlope(run.results.filter((r) => r.model === m).map((r) => [r.N, r.params!]));
    assert.ok(Math.abs(slope('monet-hd') - 0.5) < 1e-9, `monet-hd parameter exponent ${slope('monet-hd')}`);
    assert.ok(Math.abs(slope('monet-vd') - 0.5) < 1e-9, `monet-vd parameter exponent ${slope('monet-vd')}`);
    assert.ok(Math.abs(slope('smoe') - 1) < 1e-9, `smoe parameter exponent ${slope('smoe')}`);
    assert.ok(
      slope('peer') > 0.5 && slope('peer') < 1,
      `peer parameter exponent ${slope('peer')} (N·d tables plus √N-sized keys)`,
    );
  },
);

test('result files: JSON with the machine, one CSV per table, self-contained HTML with SVG', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  try {
    const scaling = await runScaling({ quick: true, time: false, sqrtNs: [4, 8], models: ['monet-hd', 'smoe'] });
    // times are not measured here: give the rows placeholder values so the charts have something to draw
    for (const r of scaling.results) Object.assign(r, { msPerStep: 1, msBest: 1, usPerToken: r.N, zeroGradMs: 0 });
    const results: BenchResults = {
      schema: 'monet-ts-bench/1',
      command: 'test',
      quick: true,
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      elapsedSeconds: 0,
      machine: machineInfo(true, false),
      notes: ['a <note> & "quotes"'],
      matmul: {
        results: [
          { n: 64, impl: 'plain JS', group: 'baseline', gflops: 1, gflopsBest: 1.5, msPerCall: 0.5, samples: 3 },
        ],
        notes: [],
      },
      layers: {
        T: 4,
        d: 8,
        adapters: [],
        notes: [],
        results: [
          {
            layer: 'dense-ffn',
            size: 'F=8',
            backend: 'wasm simd',
            group: 'ours',
            msPerStep: 1,
            msBest: 0.9,
            tokensPerSec: 4000,
            samples: 2,
          },
        ],
      },
      scaling,
    };
    const files = writeResults(results, dir, 't');
    assert.equal(files.map((f) => f.slice(dir.length + 1)).sort(), [
      't-layers.csv',
      't-matmul.csv',
      't-scaling.csv',
      't.html',
      't.json',
    ]);
    const json = JSON.parse(readFileSync(join(dir, 't.json'), 'utf8')) as BenchResults;
    assert.ok(json.machine.cpuModel.length > 0);
    assert.is(json.scaling!.results.length, 4);
    const csv = readFileSync(join(dir, 't-scaling.csv'), 'utf8').trim().split('\n');
    assert.is(csv.length, 1 + 4);
    assert.ok(csv[0].startsWith('model,sqrt_n,n,status,params'));
    const html = readFileSync(join(dir, 't.html'), 'utf8');
    assert.ok(html.includes('<svg'), 'charts are inline SVG');
    assert.not.match(
      html,
      /<script|<link|src=|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
      'no scripts, no external resources',
    );
    assert.ok(html.includes('a &lt;note&gt; &amp; &quot;quotes&quot;'), 'text is escaped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
