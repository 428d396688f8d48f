// Float64 finite-difference checks of the reference feed-forward layers through their fixture case runners
// (dense-ffn, smoe, topk, topk-ffn): every in.* and param.* gradient, with inputs drawn away from top-k boundaries;
// the tie rules, the α schedule, gradInit accumulation, forward-only runs and input validation.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import type { Tensor, TensorMap } from '../src/tensor.ts';
import { gradCheck } from '../reference/gradcheck.ts';
import { linearForward } from '../reference/linear.ts';
import { Rng } from '../reference/rng.ts';
import { kthLargest, topkAlpha } from '../reference/topk.ts';
import { drawWithMargin, MIN_MARGIN, topkMargin } from '../src/fixtures/margins.ts';
import { runReferenceCase } from '../src/fixtures/reference-cases.ts';
import { KINDS } from '../src/kinds/index.ts';

const TOL = 1e-6;
type Runner = (c: FixtureCase, opts?: RunOptions) => TensorMap;
// The reference's case runners (src/fixtures/reference-cases.ts), one per kind.
const runDenseFfnCase: Runner = runReferenceCase;
const runSmoeCase: Runner = runReferenceCase;
const runTopkCase: Runner = runReferenceCase;
const runTopkFfnCase: Runner = runReferenceCase;

/** A tensor that shares `data` (so finite differences can perturb it in place). */
const t64 = (shape: number[], data: Float64Array): Tensor => ({ dtype: 'F64', shape, data });

function makeCase(
  kind: string,
  config: Record<string, unknown>,
  tensors: [string, number[], Float64Array][],
): FixtureCase {
  return { kind, config, tensors: new Map(tensors.map(([n, s, d]) => [n, t64(s, d)])), source: `test ${kind}` };
}

/**
 * The fixture objective L = Σ out.y ⊙ in.dy + Σ coef·out.loss_<name>, evaluated by a forward-only run; every
 * in.* (except in.dy) and param.* tensor is checked against the runner's grad.* output.
 */
function checkCaseGradients(run: Runner, c: FixtureCase, coefs: Record<string, number> = {}): void {
  const res = run(c);
  const dy = c.tensors.get('in.dy')!.data as Float64Array;
  const loss = () => {
    const o = run(c, { forwardOnly: true });
    const y = o.get('out.y')!.data as Float64Array;
    let L = 0;
    for (let i = 0; i < y.length; i++) L += y[i] * dy[i];
    for (const [name, coef] of Object.entries(coefs)) L += coef * (o.get(`out.loss_${name}`)!.data as Float64Array)[0];
    return L;
  };
  const names = [...c.tensors.keys()].filter((n) => (n.startsWith('in.') && n !== 'in.dy') || n.startsWith('param.'));
  const gradNames = [...res.keys()].filter((n) => n.startsWith('grad.')).sort();
  assert.equal(gradNames, names.map((n) => `grad.${n}`).sort(), `${c.kind}: one grad.* per in.*/param.*`);
  const tensors = names.map((n) => ({
    name: n,
    value: c.tensors.get(n)!.data as Float64Array,
    grad: res.get(`grad.${n}`)!.data as Float64Array,
  }));
  for (const r of gradCheck(loss, tensors))
    assert.ok(
      r.relError <= TOL,
      `${c.kind} ${JSON.stringify(c.config)}: ${r.name} relative error ${r.relError.toExponential(2)} > ${TOL}`,
    );
}

// ---------------------------------------------------------------------------------------------------------------
// dense-ffn

function denseCase(rng: Rng, activation: string, T = 5, d = 4, F = 6): FixtureCase {
  const ts: [string, number[], Float64Array][] = [
    ['in.x', [T, d], rng.normals(T * d)],
    ['in.dy', [T, d], rng.normals(T * d)],
  ];
  if (activation === 'swiglu') ts.push(['param.gate_proj.weight', [F, d], rng.normals(F * d, 0.7)]);
  ts.push(
    ['param.up_proj.weight', [F, d], rng.normals(F * d, 0.7)],
    ['param.down_proj.weight', [d, F], rng.normals(d * F, 0.7)],
  );
  return makeCase('dense-ffn', { hidden_size: d, intermediate_size: F, activation }, ts);
}

for (const activation of ['swiglu', 'relu2', 'relu', 'gelu']) {
  test(`dense-ffn ${activation}: every gradient matches finite differences`, () => {
    checkCaseGradients(runDenseFfnCase, denseCase(new Rng(100), activation));
  });
}

test('dense-ffn swiglu: y = down(silu(gate x) ⊙ up x), spelled out for one token', () => {
  const c = denseCase(new Rng(101), 'swiglu', 1, 2, 3);
  const g = (n: string) => c.tensors.get(n)!.data as Float64Array;
  const [x, G, U, D] = [g('in.x'), g('param.gate_proj.weight'), g('param.up_proj.weight'), g('param.down_proj.weight')];
  const h = [0, 1, 2].map((j) => {
    const a = G[j * 2] * x[0] + G[j * 2 + 1] * x[1];
    const b = U[j * 2] * x[0] + U[j * 2 + 1] * x[1];
    return (a / (1 + Math.exp(-a))) * b;
  });
  const y = runDenseFfnCase(c).get('out.y')!.data as Float64Array;
  for (let i = 0; i < 2; i++)
    assert.ok(Math.abs(y[i] - (D[i * 3] * h[0] + D[i * 3 + 1] * h[1] + D[i * 3 + 2] * h[2])) < 1e-14);
});

// ---------------------------------------------------------------------------------------------------------------
// smoe

function smoeCase(rng: Rng, activation: string, aux = { balance: 0.3, z: 0.2 }): FixtureCase {
  const [T, d, F, E, k] = [6, 4, 3, 4, 2];
  const config = { hidden_size: d, intermediate_size: F, num_experts: E, top_k: k, activation, aux };
  // Router logits must keep a margin at the top-k boundary, or a finite-difference step could re-route a token.
  const { value } = drawWithMargin(
    () => ({ x: rng.normals(T * d), gate: rng.normals(E * d) }),
    ({ x, gate }) => {
      const z = new Float64Array(T * E);
      linearForward(z, x, gate, null, T, d, E);
      return topkMargin(z, T, E, k);
    },
  );
  const ts: [string, number[], Float64Array][] = [
    ['in.x', [T, d], value.x],
    ['in.dy', [T, d], rng.normals(T * d)],
    ['param.gate.weight', [E, d], value.gate],
  ];
  for (const s of [...KINDS.smoe.params(KINDS.smoe.parse(config, 'test'))].slice(1))
    ts.push([`param.${s.name}`, s.shape, rng.normals(s.shape[0] * s.shape[1], 0.7)]);
  return makeCase('smoe', config, ts);
}

for (const activation of ['swiglu', 'relu2']) {
  test(`smoe ${activation} with balance and z losses on: every gradient matches finite differences`, () => {
    const c = smoeCase(new Rng(200), activation);
    checkCaseGradients(runSmoeCase, c, { balance: 0.3, z: 0.2 });
  });
}

test('smoe: aux losses and gates by their definitions (f normalised by T·k, top-k then softmax)', () => {
  const c = smoeCase(new Rng(201), 'relu2');
  const [T, d, E, k] = [6, 4, 4, 2];
  const res = runSmoeCase(c);
  const x = c.tensors.get('in.x')!.data as Float64Array;
  const Wg = c.tensors.get('param.gate.weight')!.data as Float64Array;
  const idx = res.get('idx.topk')!.data as Int32Array;
  const counts = new Array(E).fill(0);
  const P = new Array(E).fill(0);
  let zl = 0;
  for (let t = 0; t < T; t++) {
    const z = [...Array(E).keys()].map((e) =>
      [...Array(d).keys()].reduce((s, i) => s + x[t * d + i] * Wg[e * d + i], 0),
    );
    const order = [...Array(E).keys()].sort((a, b) => z[b] - z[a] || a - b);
    assert.equal(Array.from(idx.subarray(t * k, t * k + k)), order.slice(0, k));
    for (const e of order.slice(0, k)) counts[e]++;
    const lse = Math.log(z.reduce((s, v) => s + Math.exp(v), 0));
    for (const [e, v] of z.entries()) P[e] += Math.exp(v - lse) / T;
    zl += (lse * lse) / T;
  }
  const bal = E * counts.reduce((s, n, e) => s + (n / (T * k)) * P[e], 0);
  assert.ok(Math.abs((res.get('out.loss_balance')!.data as Float64Array)[0] - bal) < 1e-13);
  assert.ok(Math.abs((res.get('out.loss_z')!.data as Float64Array)[0] - zl) < 1e-13);
  assert.equal(res.get('out.loss_balance')!.shape, [], 'aux losses are 0-d tensors');
});

test('smoe ties: equal router logits go to the lower expert index first', () => {
  // d = 1, x = 1, so the logits are the gate weights themselves.
  const run = (gate: number[], k: number) => {
    const E = gate.length;
    const ts: [string, number[], Float64Array][] = [
      ['in.x', [1, 1], Float64Array.from([1])],
      ['in.dy', [1, 1], Float64Array.from([1])],
      ['param.gate.weight', [E, 1], Float64Array.from(gate)],
    ];
    for (let e = 0; e < E; e++)
      ts.push(
        [`param.experts.${e}.w1.weight`, [2, 1], Float64Array.from([1, 2])],
        [`param.experts.${e}.w2.weight`, [1, 2], Float64Array.from([1, 1])],
      );
    const c = makeCase(
      'smoe',
      { hidden_size: 1, intermediate_size: 2, num_experts: E, top_k: k, activation: 'relu', aux: { balance: 0, z: 0 } },
      ts,
    );
    return Array.from(runSmoeCase(c).get('idx.topk')!.data as Int32Array);
  };
  assert.equal(run([1, 5, 5, 2], 2), [1, 2]);
  assert.equal(run([1, 5, 5, 2], 1), [1]);
  assert.equal(run([3, 5, 3, 3], 2), [1, 0], 'a tie at the boundary keeps the lowest index');
  assert.equal(run([3, 5, 3, 3], 3), [1, 0, 2]);
  assert.equal(run([2, 2, 2, 2], 4), [0, 1, 2, 3]);
});

// ---------------------------------------------------------------------------------------------------------------
// topk and topk-ffn

for (const alpha of [1, 0.4, 0]) {
  test(`topk α=${alpha}: grad.in.x matches finite differences`, () => {
    const rng = new Rng(300);
    const [T, F, k] = [4, 7, 3];
    // Away from the top-k boundary and from ReLU's kink at 0.
    const { value: x } = drawWithMargin(
      () => rng.normals(T * F),
      (x) => Math.min(topkMargin(x, T, F, k), ...Array.from(x, (v) => Math.abs(v) / MIN_MARGIN / 10)),
    );
    const c = makeCase('topk', { k, alpha, activation: 'relu' }, [
      ['in.x', [T, F], x],
      ['in.dy', [T, F], rng.normals(T * F)],
    ]);
    checkCaseGradients(runTopkCase, c);
  });

  test(`topk-ffn α=${alpha}: every gradient matches finite differences`, () => {
    const rng = new Rng(400);
    const [T, d, F, k] = [5, 4, 8, 3];
    const { value } = drawWithMargin(
      () => ({ x: rng.normals(T * d), up: rng.normals(F * d) }),
      ({ x, up }) => {
        const z = new Float64Array(T * F);
        linearForward(z, x, up, null, T, d, F);
        return topkMargin(z, T, F, k);
      },
    );
    const c = makeCase('topk-ffn', { hidden_size: d, intermediate_size: F, k, alpha }, [
      ['in.x', [T, d], value.x],
      ['in.dy', [T, d], rng.normals(T * d)],
      ['param.up_proj.weight', [F, d], value.up],
      ['param.down_proj.weight', [d, F], rng.normals(d * F)],
    ]);
    checkCaseGradients(runTopkFfnCase, c);
  });
}

test('topk ties: every entry equal to τ_k is kept (the mask may exceed k)', () => {
  const run = (row: number[], k: number, alpha = 0) => {
    const F = row.length;
    const c = makeCase('topk', { k, alpha }, [
      ['in.x', [1, F], Float64Array.from(row)],
      ['in.dy', [1, F], new Float64Array(F)],
    ]);
    const o = runTopkCase(c);
    return {
      mask: Array.from(o.get('idx.mask')!.data as Uint8Array),
      y: Array.from(o.get('out.y')!.data as Float64Array),
    };
  };
  assert.equal(run([1, 3, 3, 2], 1).mask, [0, 1, 1, 0], 'k = 1 with a tie at the top keeps both');
  assert.equal(run([1, 3, 3, 2], 2).mask, [0, 1, 1, 0]);
  assert.equal(run([1, 3, 3, 2], 3).mask, [0, 1, 1, 1]);
  assert.equal(run([2, 2, 2, 2], 1).mask, [1, 1, 1, 1]);
  assert.equal(run([-1, -3, 0.5, -2], 2).y, [0, 0, 0.5, 0], 'selected negatives give ReLU 0');
  assert.equal(run([1, 3, 3, 2], 1, 0.25).y, [0.25, 3, 3, 0.5], 'α·f(x) + (1−α)·f(x)⊙m');
  assert.is(kthLargest(Float64Array.from([5, 1, 5, 3]), 2), 5);
});

test('topk α schedule: linear 1 → 0 over the first 20 % of steps, then 0', () => {
  assert.is(topkAlpha(0, 1000), 1);
  assert.ok(Math.abs(topkAlpha(50, 1000) - 0.75) < 1e-15);
  assert.ok(Math.abs(topkAlpha(100, 1000) - 0.5) < 1e-15);
  assert.is(topkAlpha(200, 1000), 0);
  assert.is(topkAlpha(999, 1000), 0);
  assert.ok(Math.abs(topkAlpha(25, 100, 0.5) - 0.5) < 1e-15, 'configurable ratio');
  assert.is(topkAlpha(0, 100, 0), 0, 'ratio 0: no annealing');
  let prev = 1;
  for (let s = 0; s < 300; s++) {
    const a = topkAlpha(s, 300);
    assert.ok(a <= prev && a >= 0);
    prev = a;
  }
  assert.throws(() => topkAlpha(-1, 10), /step must be an integer ≥ 0/);
  assert.throws(() => topkAlpha(0, 0), /totalSteps/);
  assert.throws(() => topkAlpha(0, 10, 1.5), /ratio/);
});

// ---------------------------------------------------------------------------------------------------------------
// Case-runner contract

test('case runners add their gradients to opts.gradInit and skip backward when forwardOnly', () => {
  const c = denseCase(new Rng(500), 'relu2');
  const plain = runDenseFfnCase(c);
  const init = new Map<string, Tensor>();
  for (const [n, t] of plain)
    if (n.startsWith('grad.')) init.set(n, t64(t.shape, new Float64Array(t.data.length).fill(0.5)));
  const acc = runDenseFfnCase(c, { gradInit: init });
  for (const [n, t] of plain) {
    if (!n.startsWith('grad.')) continue;
    const a = acc.get(n)!.data as Float64Array;
    for (const [i, v] of (t.data as Float64Array).entries())
      assert.ok(Math.abs(a[i] - (v + 0.5)) < 1e-14, `${n}[${i}]`);
  }
  const fo = runSmoeCase(smoeCase(new Rng(501), 'swiglu'), { forwardOnly: true });
  assert.ok(fo.has('out.y') && fo.has('idx.topk') && fo.has('out.loss_z'));
  assert.not.ok([...fo.keys()].some((n) => n.startsWith('grad.')));
});

test('case runners refuse bad config, shapes and unknown tensors with clear errors', () => {
  const c = denseCase(new Rng(600), 'relu2');
  assert.throws(
    () => runDenseFfnCase({ ...c, config: { ...c.config, activation: 'tanh' } }),
    /config\.activation: expected one of 'swiglu', 'relu2', 'relu', 'gelu', found "tanh"/,
  );
  assert.throws(
    () => runDenseFfnCase({ ...c, config: { ...c.config, intermediate_size: 5 } }),
    /param\.up_proj\.weight: expected shape \[5,4\], found \[6,4\]/,
  );
  const extra = new Map(c.tensors);
  extra.set('param.gate_proj.weight', t64([6, 4], new Float64Array(24)));
  assert.throws(
    () => runDenseFfnCase({ ...c, tensors: extra }),
    /unexpected tensors for this kind\/config: param\.gate_proj\.weight/,
  );
  const missing = new Map(c.tensors);
  missing.delete('param.down_proj.weight');
  assert.throws(
    () => runDenseFfnCase({ ...c, tensors: missing }),
    /test dense-ffn \[kind dense-ffn\]: missing tensor param\.down_proj\.weight/,
  );
  const s = smoeCase(new Rng(601), 'relu2');
  assert.throws(
    () => runSmoeCase({ ...s, config: { ...s.config, aux: { balance: 0.1 } } }),
    /config\.aux\.z: expected a finite number/,
  );
  assert.throws(
    () => runSmoeCase({ ...s, config: { ...s.config, top_k: 5 } }),
    /config\.top_k: expected at most num_experts = 4, found 5/,
  );
  const tk = makeCase('topk', { k: 9, alpha: 0.5 }, [
    ['in.x', [1, 3], new Float64Array(3)],
    ['in.dy', [1, 3], new Float64Array(3)],
  ]);
  assert.throws(() => runTopkCase(tk), /config\.k: expected at most the last axis of in\.x \(3\), found 9/);
  assert.throws(
    () => runTopkCase({ ...tk, config: { k: 1, alpha: 2 } }),
    /config\.alpha: expected a number in \[0, 1\]/,
  );
});

test.run();
