// Monet experts reference: MoHDE / MoVDE against the naive expert view (1e-12), the aux losses, the readout helpers,
// and finite differences of whole monet-hd / monet-vd layers (router + experts + both aux losses).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { monetAuxBackward, monetAuxForward } from '../reference/monet-aux.ts';
import {
  compositeId,
  compositeIndices,
  compositeScore,
  compositeScores,
  monetExpertContribution,
  monetExpertOutput,
  monetExpertViewForward,
  type MonetExperts,
} from '../reference/monet-expert-view.ts';
import { MONET_HD, type MonetMoeDims } from '../reference/monet-hd.ts';
import type { MonetExpertsImpl } from '../reference/monet-layer.ts';
import {
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterParams,
  type MonetRouterState,
} from '../reference/monet-router.ts';
import { MONET_VD, monetVdForward, type MonetVdParams } from '../reference/monet-vd.ts';
import { Rng } from '../reference/rng.ts';
import { drawWithMargin, monetRouterSavedMargin } from '../src/fixtures/margins.ts';
import { runReferenceCase } from '../src/fixtures/reference-cases.ts';
import { monetHdTable, monetVdTable } from '../src/kinds/monet.ts';
import type { FixtureCase, RunOptions } from '../src/backend/case.ts';
import type { TensorMap } from '../src/tensor.ts';
import { f64 } from '../src/tensor.ts';
import { D, arraysEqual, checkGrads, dot, maxRelDiff } from './fd-helpers.ts';

const DIMS: MonetMoeDims = { T: 6, d: 6, H: 2, E: 4, m: 4 };

/** The experts' parameters of a decomposition (names without `moe.`), from the kind declaration. */
const paramSpecs = (impl: MonetExpertsImpl) =>
  Object.values(impl.decompose === 'vertical' ? monetVdTable(DIMS) : monetHdTable(DIMS));
// The reference's `monet-hd` / `monet-vd` case runners (src/fixtures/reference-cases.ts).
const runMonetHdCase: (c: FixtureCase, opts?: RunOptions) => TensorMap = runReferenceCase;
const runMonetVdCase: (c: FixtureCase, opts?: RunOptions) => TensorMap = runReferenceCase;
const ROPTS = { topk: 1, mode: 'train' as const, bnEps: 1e-5, bnMomentum: 0.1 };

function drawExperts(impl: MonetExpertsImpl, rng: Rng, biasStd = 0.3): Record<string, Float64Array> {
  const p: Record<string, Float64Array> = {};
  for (const s of paramSpecs(impl)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    // biases drawn non-zero so that their gradients are checked too
    p[s.name] = rng.normals(n, s.init === 'zeros' ? biasStd : 0.5);
  }
  return p;
}

function drawRouter(rng: Rng): { p: MonetRouterParams; state: MonetRouterState } {
  const { H, E, d } = DIMS;
  return {
    p: { 'w1.weight': rng.normals(H * E * d, 0.6), 'w2.weight': rng.normals(H * E * d, 0.6) },
    state: {
      'norm1.running_mean': new Float64Array(H),
      'norm1.running_var': new Float64Array(H).fill(1),
      'norm2.running_mean': new Float64Array(H),
      'norm2.running_var': new Float64Array(H).fill(1),
    },
  };
}

function route(x: Float64Array, r: { p: MonetRouterParams; state: MonetRouterState }) {
  const { T, H, E } = DIMS;
  const g1 = new Float64Array(T * H * E),
    g2 = new Float64Array(T * H * E);
  const saved = monetRouterForward(g1, g2, x, r.p, r.state, null, DIMS, ROPTS);
  return { g1, g2, saved };
}

// ---------------------------------------------------------------------------------------------------------------
// Efficient contractions = naive expert view

for (const [impl, decompose] of [
  [MONET_HD, 'horizontal'],
  [MONET_VD, 'vertical'],
] as const) {
  test(`Monet ${decompose}: efficient contractions equal Σ_ij g_ij·E_ij(x) to 1e-12`, () => {
    const rng = new Rng(decompose === 'horizontal' ? 21 : 22);
    const { T, d } = DIMS;
    const x = rng.normals(T * d);
    const p = drawExperts(impl, rng);
    const { g1, g2 } = route(x, drawRouter(rng));
    const eff = new Float64Array(T * d);
    impl.forward(eff, x, g1, g2, p, DIMS);
    const naive = new Float64Array(T * d);
    const experts = { decompose, params: p } as MonetExperts;
    monetExpertViewForward(naive, x, g1, g2, experts, DIMS);
    const rel = maxRelDiff(eff, naive);
    assert.ok(rel <= 1e-12, `efficient vs naive: ${rel}`);
    // and the tokens really mix several composite experts (the check is not about a single expert per token)
    let mixing = 0;
    for (let t = 0; t < T; t++) {
      let active = 0;
      for (let i = 0; i < DIMS.E; i++)
        for (let j = 0; j < DIMS.E; j++) if (compositeScore(g1, g2, t, i, j, DIMS.H, DIMS.E) > 0) active++;
      if (active >= 3) mixing++;
    }
    assert.ok(mixing >= T / 2, `only ${mixing} of ${T} tokens use ≥ 3 composite experts`);
  });
}

test('Monet expert view: one-hot routing (H = 1) makes the efficient layer compute exactly E_ij(x)', () => {
  const rng = new Rng(23);
  const dims = { ...DIMS, H: 1, T: 1 };
  const x = rng.normals(dims.d);
  for (const [impl, decompose] of [
    [MONET_HD, 'horizontal'],
    [MONET_VD, 'vertical'],
  ] as const) {
    const p = drawExperts(impl, rng);
    for (const [i, j] of [
      [0, 0],
      [1, 3],
      [3, 2],
    ]) {
      const g1 = new Float64Array(dims.E),
        g2 = new Float64Array(dims.E);
      g1[i] = 1;
      g2[j] = 1;
      const eff = new Float64Array(dims.d);
      impl.forward(eff, x, g1, g2, p, dims);
      const e = new Float64Array(dims.d);
      monetExpertOutput(e, x, i, j, { decompose, params: p } as MonetExperts, dims);
      assert.ok(maxRelDiff(e, eff) <= 1e-13, `${decompose} E_${i}${j}`);
    }
  }
});

test('readouts: composite id i·E + j, scores Σ_h g1·g2 summing to H, contributions that ablate one expert', () => {
  const rng = new Rng(24);
  const { T, d, H, E } = DIMS;
  assert.is(compositeId(2, 3, 512), 2 * 512 + 3);
  assert.equal(compositeIndices(compositeId(5, 511, 512), 512), [5, 511]);
  const x = rng.normals(T * d);
  const p = drawExperts(MONET_VD, rng);
  const { g1, g2 } = route(x, drawRouter(rng));
  const scores = new Float64Array(T * E * E);
  compositeScores(scores, g1, g2, T, H, E);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let n = 0; n < E * E; n++) s += scores[t * E * E + n];
    assert.ok(Math.abs(s - H) < 1e-13, 'Σ_ij g_ij = H');
  }
  // Σ over all composite experts of their contributions = the layer output; removing one = output minus it
  const y = new Float64Array(T * d);
  monetVdForward(y, x, g1, g2, p as MonetVdParams, DIMS);
  const experts: MonetExperts = { decompose: 'vertical', params: p as MonetVdParams };
  const t = 2;
  const sum = new Float64Array(d),
    c = new Float64Array(d);
  for (let i = 0; i < E; i++)
    for (let j = 0; j < E; j++) {
      monetExpertContribution(c, x, g1, g2, t, i, j, experts, DIMS);
      for (let o = 0; o < d; o++) sum[o] += c[o];
      const gij = compositeScore(g1, g2, t, i, j, H, E);
      assert.ok(gij === scores[t * E * E + compositeId(i, j, E)]);
    }
  assert.ok(maxRelDiff(sum, y.subarray(t * d, (t + 1) * d)) <= 1e-12);
});

// ---------------------------------------------------------------------------------------------------------------
// Aux losses

test('aux losses: values from their definitions, ε inside the log, argmax ties to the first index, FD backward', () => {
  const rng = new Rng(25);
  const T = 5,
    H = 2,
    E = 3;
  const dims = { T, H, E };
  // strictly positive routing weights (rows sum to 1) so that log ḡ is finite and max is unique
  const mk = () => {
    const g = new Float64Array(T * H * E);
    for (let r = 0; r < T * H; r++) {
      let s = 0;
      for (let i = 0; i < E; i++) {
        g[r * E + i] = Math.exp(rng.normal());
        s += g[r * E + i];
      }
      for (let i = 0; i < E; i++) g[r * E + i] /= s;
    }
    return g;
  };
  const g1 = mk(),
    g2 = mk();
  const { losses, saved } = monetAuxForward(g1, g2, dims, 1e-10);
  // direct evaluation of Eq. 16–17 with ḡ = batch mean and L_amb averaged over tokens
  let unif = 0,
    amb = 0;
  for (const g of [g1, g2]) {
    for (let h = 0; h < H; h++)
      for (let i = 0; i < E; i++) {
        let m = 0;
        for (let t = 0; t < T; t++) m += g[(t * H + h) * E + i];
        unif += -Math.log(m / T + 1e-10) / (2 * H * E);
      }
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++)
        amb += (1 - Math.max(...g.subarray((t * H + h) * E, (t * H + h + 1) * E))) / (2 * H * T);
  }
  assert.ok(Math.abs(losses.unif - unif) < 1e-14 && Math.abs(losses.amb - amb) < 1e-15);
  // perfect balance attains the minimum ln E
  const uni = new Float64Array(T * H * E).fill(1 / E);
  assert.ok(Math.abs(monetAuxForward(uni, uni, dims, 0).losses.unif - Math.log(E)) < 1e-14);
  // an expert nobody selects: finite thanks to ε, = −log(ε)/(2HE) for that entry
  const dead = Float64Array.from(uni);
  for (let t = 0; t < T; t++) {
    dead[t * H * E + 0] = 0;
    dead[t * H * E + 1] = 0.5;
    dead[t * H * E + 2] = 0.5;
  }
  const v = monetAuxForward(dead, uni, dims, 1e-10).losses.unif;
  assert.ok(Number.isFinite(v) && v > 10 / (2 * H * E), 'ε keeps L_unif finite for a dead expert');
  // ties: argmax is the first maximiser
  const tie = new Float64Array(T * H * E).fill(0.25);
  for (let r = 0; r < T * H; r++) {
    tie[r * E + 1] = 0.375;
    tie[r * E + 2] = 0.375;
  }
  assert.ok(monetAuxForward(tie, tie, dims).saved.argmax1.every((a) => a === 1));
  // FD w.r.t. g (as free inputs), both coefficients non-trivial
  const cu = 0.7,
    ca = 0.4;
  const f = () => {
    const l = monetAuxForward(g1, g2, dims, 1e-10).losses;
    return cu * l.unif + ca * l.amb;
  };
  const dg1 = new Float64Array(g1.length),
    dg2 = new Float64Array(g2.length);
  monetAuxBackward(dg1, dg2, cu, ca, saved, dims);
  checkGrads('aux', f, { g1, g2 }, { g1: dg1, g2: dg2 });
});

// ---------------------------------------------------------------------------------------------------------------
// Whole layers by finite differences (router + experts + both aux losses)

for (const [impl, decompose] of [
  [MONET_HD, 'horizontal'],
  [MONET_VD, 'vertical'],
] as const) {
  test(`monet ${decompose} layer: FD for every parameter and input, both aux losses on (train-mode router)`, () => {
    const { T, d, H, E } = DIMS;
    const cu = 0.5,
      ca = 0.3; // large enough that an aux-gradient error would show in the total
    const draw = (a: number) => {
      const rng = new Rng(300 + a + (decompose === 'vertical' ? 1000 : 0));
      return { x: rng.normals(T * d), r: drawRouter(rng), p: drawExperts(impl, rng), dy: rng.normals(T * d) };
    };
    const { value: s } = drawWithMargin(draw, (s) => monetRouterSavedMargin(route(s.x, s.r).saved, s.x, s.r.p, DIMS));
    const base = route(s.x, s.r);
    const objective = () => {
      const rt = route(s.x, s.r);
      assert.ok(
        arraysEqual(rt.saved.mask1, base.saved.mask1) && arraysEqual(rt.saved.mask2, base.saved.mask2),
        'routing flipped under FD',
      );
      const y = new Float64Array(T * d);
      impl.forward(y, s.x, rt.g1, rt.g2, s.p, DIMS);
      const l = monetAuxForward(rt.g1, rt.g2, DIMS).losses;
      return dot(y, s.dy) + cu * l.unif + ca * l.amb;
    };
    // analytic, in the order the case runner uses
    const y = new Float64Array(T * d);
    const es = impl.forward(y, s.x, base.g1, base.g2, s.p, DIMS);
    const aux = monetAuxForward(base.g1, base.g2, DIMS);
    const dx = new Float64Array(T * d);
    const dp: Record<string, Float64Array> = {};
    for (const [k, v] of Object.entries(s.p)) dp[k] = new Float64Array(v.length);
    const dr = { 'w1.weight': new Float64Array(H * E * d), 'w2.weight': new Float64Array(H * E * d) };
    const dg1 = new Float64Array(T * H * E),
      dg2 = new Float64Array(T * H * E);
    impl.backward(dx, dp, dg1, dg2, s.dy, s.x, base.g1, base.g2, s.p, es, DIMS);
    monetAuxBackward(dg1, dg2, cu, ca, aux.saved, DIMS);
    monetRouterBackward(dx, dr, dg1, dg2, s.x, s.r.p, base.saved, DIMS);
    const tensors: Record<string, Float64Array> = {
      x: s.x,
      'router.w1.weight': s.r.p['w1.weight'],
      'router.w2.weight': s.r.p['w2.weight'],
    };
    const analytic: Record<string, Float64Array> = {
      x: dx,
      'router.w1.weight': dr['w1.weight'],
      'router.w2.weight': dr['w2.weight'],
    };
    for (const k of Object.keys(s.p)) {
      tensors[`moe.${k}`] = s.p[k];
      analytic[`moe.${k}`] = dp[k];
    }
    checkGrads(`monet ${decompose}`, objective, tensors, analytic);
  });
}

test('monet-hd / monet-vd cases: outputs, aux as 0-d tensors, gradInit, forwardOnly, config errors', () => {
  const { T, d, H, E, m } = DIMS;
  for (const [impl, run, kind] of [
    [MONET_HD, runMonetHdCase, 'monet-hd'],
    [MONET_VD, runMonetVdCase, 'monet-vd'],
  ] as const) {
    const rng = new Rng(40);
    const r = drawRouter(rng);
    const p = drawExperts(impl, rng);
    const x = rng.normals(T * d),
      dy = rng.normals(T * d);
    const tensors = new Map([
      ['in.x', f64([T, d], x)],
      ['in.dy', f64([T, d], dy)],
      ['param.router.w1.weight', f64([H * E, d], r.p['w1.weight'])],
      ['param.router.w2.weight', f64([H * E, d], r.p['w2.weight'])],
      ...paramSpecs(impl).map((s) => [`param.moe.${s.name}`, f64(s.shape, p[s.name])] as const),
    ]);
    const config = {
      hidden_size: d,
      moe_experts: E,
      moe_heads: H,
      moe_topk: 1,
      moe_dim: m,
      hidden_act: 'relu2',
      mode: 'train',
      aux: { unif: 0.5, amb: 0.3 },
      unif_eps: 1e-10,
    };
    const out = run({ kind, config, tensors });
    assert.equal(out.get('out.loss_unif')!.shape, []);
    const y = new Float64Array(T * d);
    const rt = route(x, r);
    impl.forward(y, x, rt.g1, rt.g2, p, DIMS);
    assert.ok(maxRelDiff(D(out, 'out.y') as Float64Array, y) === 0, 'case out.y = layer forward');
    assert.ok(D(out, 'out.loss_unif')[0] === monetAuxForward(rt.g1, rt.g2, DIMS).losses.unif);
    for (const k of [
      'next.router.norm1.running_mean',
      'next.router.norm2.running_var',
      'idx.mask1',
      `grad.param.moe.${paramSpecs(impl)[0].name}`,
      'grad.param.router.w2.weight',
      'grad.in.x',
    ])
      assert.ok(out.has(k), `${kind}: missing ${k}`);
    const init = new Map([['grad.in.x', f64([T, d], new Float64Array(T * d).fill(-2))]]);
    const out2 = run({ kind, config, tensors }, { gradInit: init });
    const a = D(out, 'grad.in.x'),
      b = D(out2, 'grad.in.x');
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i] - (a[i] - 2)) < 1e-13);
    assert.ok(![...run({ kind, config, tensors }, { forwardOnly: true }).keys()].some((k) => k.startsWith('grad.')));
    assert.throws(() => run({ kind, config: { ...config, hidden_act: 'gelu' }, tensors }), /hidden_act/);
    assert.throws(() => run({ kind, config: { ...config, aux: { unif: 1e-3 } }, tensors }), /config\.aux\.amb/);
    const extra = new Map(tensors);
    extra.set('param.moe.bogus', f64([1]));
    assert.throws(() => run({ kind, config, tensors: extra }), /unexpected tensors.*param\.moe\.bogus/);
  }
});

test.run();
