// Monet router reference: the inverse normal CDF behind sigma, BatchNorm (train/eval, running stats), the router's
// selection rule (threshold min(max, sigma), ≥ keeps ties), and its backward by finite differences.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { batchnormBackward, batchnormForward } from '../reference/batchnorm.ts';
import {
  monetRouterBackward,
  monetRouterForward,
  type MonetRouterParams,
  type MonetRouterState,
} from '../reference/monet-router.ts';
import { erf, erfc, monetSigma, normalCdf, normalQuantile } from '../reference/normal.ts';
import { Rng } from '../reference/rng.ts';
import { drawWithMargin, MIN_MARGIN, monetRouterSavedMargin } from '../src/fixtures/margins.ts';
import { runReferenceCase as runMonetRouterCase } from '../src/fixtures/reference-cases.ts';
import { f64 } from '../src/tensor.ts';
import { D, arraysEqual, checkGrads, dot } from './fd-helpers.ts';

// ---------------------------------------------------------------------------------------------------------------
// Inverse normal CDF

test('sigma = Φ⁻¹(1 − topk/E) matches scipy to 1e-12 for the values in docs/spec.md §1.3', () => {
  // docs/spec.md §1.3 [CHECK] values (scipy norm.ppf)
  const cases: Array<[number, number, number]> = [
    [8, 512, 2.1538746940614564],
    [32, 512, 1.5341205443525463],
    [8, 64, 1.1503493803760079],
    [2, 16, 1.1503493803760079],
  ];
  for (const [k, E, want] of cases) {
    const got = monetSigma(k, E);
    assert.ok(Math.abs(got - want) <= 1e-12, `sigma(${k}/${E}) = ${got}, expected ${want}`);
  }
});

test('erfc matches published high-precision values to 1e-13 relative, in both tails', () => {
  // Abramowitz & Stegun / DLMF tabulated values (more digits than float64 holds)
  // (as text: the literal keeps every published digit; Number() rounds it to the nearest float64)
  const table: Array<[number, number]> = [
    [0.5, Number('0.479500122186953462317')],
    [1, Number('0.157299207050285130659')],
    [2, Number('0.00467773498104726583793')],
    [3, Number('2.20904969985854413728e-5')],
    [5, Number('1.53745979442803485019e-12')],
  ];
  for (const [x, want] of table) {
    const rel = Math.abs(erfc(x) - want) / want;
    assert.ok(rel < 1e-13, `erfc(${x}) relative error ${rel}`);
    assert.ok(Math.abs(erfc(-x) - (2 - want)) < 1e-15, `erfc(−${x})`);
    assert.ok(Math.abs(erf(x) - (1 - want)) < 1e-15, `erf(${x})`);
  }
});

test('normalQuantile inverts normalCdf across the range (round trip to ~1e-14 relative to the tail mass)', () => {
  for (const p of [1e-300, 1e-20, 1e-9, 0.001, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.9, 0.97575, 0.999, 1 - 1e-9]) {
    const z = normalQuantile(p);
    const back = normalCdf(z);
    const tail = Math.min(p, 1 - p);
    // exp(−z²/2) turns the rounding of z² into a relative error of ~z²·1e-16 (1e-300 needs z ≈ −37); and p close
    // to 1 is itself only known to ~1 ulp of 1 (2.2e-16 absolute)
    const tol = 1e-15 * (20 + z * z) * tail + (p > 0.5 ? 2.3e-16 : 0);
    assert.ok(Math.abs(back - p) <= tol, `Φ(Φ⁻¹(${p})) = ${back}`);
    if (p >= 1e-9 && p <= 1 - 1e-9)
      assert.ok(Math.abs(normalQuantile(1 - p) + z) <= 1e-6 * Math.max(1, Math.abs(z)), `symmetry at ${p}`);
  }
  assert.throws(() => normalQuantile(0), /0 < p < 1/);
  assert.throws(() => monetSigma(8, 8), /moe_topk/);
});

// ---------------------------------------------------------------------------------------------------------------
// BatchNorm

test('BatchNorm train mode: biased batch variance normalises, running stats get the unbiased variance', () => {
  const rng = new Rng(11);
  const O = 5,
    C = 3,
    I = 4; // Monet layout: O tokens, C heads, I experts
  const x = rng.normals(O * C * I, 2);
  for (let k = 0; k < x.length; k++) x[k] += 0.7; // a non-zero mean
  const rm = rng.normals(C),
    rv = Float64Array.from(rng.normals(C), (v) => 1 + v * v);
  const nm = new Float64Array(C),
    nv = new Float64Array(C);
  const out = new Float64Array(O * C * I);
  batchnormForward(out, x, null, null, rm, rv, nm, nv, { O, C, I }, { mode: 'train', eps: 1e-5, momentum: 0.1 });
  const n = O * I;
  for (let c = 0; c < C; c++) {
    // one-pass E[x²] − E[x]² here, two-pass in the reference: independent arithmetic
    let s = 0,
      s2 = 0;
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++) {
        const v = x[(o * C + c) * I + i];
        s += v;
        s2 += v * v;
      }
    const mean = s / n,
      varB = s2 / n - mean * mean;
    for (let o = 0; o < O; o++)
      for (let i = 0; i < I; i++) {
        const k = (o * C + c) * I + i;
        assert.ok(Math.abs(out[k] - (x[k] - mean) / Math.sqrt(varB + 1e-5)) < 1e-12, 'normalised value');
      }
    assert.ok(Math.abs(nm[c] - (0.9 * rm[c] + 0.1 * mean)) < 1e-14, 'running_mean update');
    assert.ok(Math.abs(nv[c] - (0.9 * rv[c] + (0.1 * varB * n) / (n - 1))) < 1e-12, 'running_var update (unbiased)');
  }
  assert.throws(
    () =>
      batchnormForward(
        new Float64Array(3),
        new Float64Array(3),
        null,
        null,
        rm,
        rv,
        null,
        null,
        { O: 1, C: 3, I: 1 },
        { mode: 'train', eps: 1e-5, momentum: 0.1 },
      ),
    /more than 1 value per channel/,
  );
});

test('BatchNorm eval mode uses the running stats and updates nothing', () => {
  const rng = new Rng(12);
  const O = 4,
    C = 3,
    I = 1;
  const x = rng.normals(O * C);
  const rm = rng.normals(C),
    rv = Float64Array.from(rng.normals(C), (v) => 0.5 + v * v);
  const w = rng.normals(C),
    b = rng.normals(C);
  const out = new Float64Array(O * C);
  const nm = new Float64Array(C).fill(7);
  batchnormForward(out, x, w, b, rm, rv, nm, null, { O, C, I }, { mode: 'eval', eps: 1e-5, momentum: 0.1 });
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++) {
      const want = ((x[o * C + c] - rm[c]) / Math.sqrt(rv[c] + 1e-5)) * w[c] + b[c];
      assert.ok(Math.abs(out[o * C + c] - want) < 1e-14);
    }
  assert.ok(
    nm.every((v) => v === 7),
    'eval mode must not write running stats',
  );
});

test('BatchNorm backward (affine, train and eval, Monet layout) matches finite differences', () => {
  for (const mode of ['train', 'eval'] as const) {
    const rng = new Rng(mode === 'train' ? 13 : 14);
    const O = 4,
      C = 3,
      I = 2;
    const x = rng.normals(O * C * I, 1.5);
    const w = rng.normals(C),
      b = rng.normals(C);
    const rm = rng.normals(C),
      rv = Float64Array.from(rng.normals(C), (v) => 0.5 + v * v);
    const dout = rng.normals(O * C * I);
    const dims = { O, C, I },
      o = { mode, eps: 1e-5, momentum: 0.1 };
    const f = () => {
      const out = new Float64Array(O * C * I);
      batchnormForward(out, x, w, b, rm, rv, null, null, dims, o);
      return dot(out, dout);
    };
    const out = new Float64Array(O * C * I);
    const saved = batchnormForward(out, x, w, b, rm, rv, null, null, dims, o);
    const dx = new Float64Array(O * C * I),
      dw = new Float64Array(C),
      db = new Float64Array(C);
    batchnormBackward(dx, dw, db, dout, w, saved, dims);
    checkGrads(`batchnorm ${mode}`, f, { x, w, b }, { x: dx, w: dw, b: db });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Router

interface RouterDraw {
  x: Float64Array;
  p: MonetRouterParams;
  state: MonetRouterState;
  dg1: Float64Array;
  dg2: Float64Array;
}

const RD = { T: 7, d: 5, H: 2, E: 6 };
const ROPTS = (mode: 'train' | 'eval') => ({ topk: 2, mode, bnEps: 1e-5, bnMomentum: 0.1 });

function drawRouter(seed: number): RouterDraw {
  const { T, d, H, E } = RD;
  const rng = new Rng(seed);
  return {
    x: rng.normals(T * d),
    p: { 'w1.weight': rng.normals(H * E * d, 0.5), 'w2.weight': rng.normals(H * E * d, 0.5) },
    state: {
      'norm1.running_mean': rng.normals(H, 0.3),
      'norm1.running_var': Float64Array.from(rng.normals(H), (v) => 0.8 + v * v),
      'norm2.running_mean': rng.normals(H, 0.3),
      'norm2.running_var': Float64Array.from(rng.normals(H), (v) => 0.8 + v * v),
    },
    dg1: rng.normals(T * H * E),
    dg2: rng.normals(T * H * E),
  };
}

function routerForward(r: RouterDraw, mode: 'train' | 'eval') {
  const { T, H, E } = RD;
  const g1 = new Float64Array(T * H * E),
    g2 = new Float64Array(T * H * E);
  const saved = monetRouterForward(g1, g2, r.x, r.p, r.state, null, RD, ROPTS(mode));
  return { g1, g2, saved };
}

for (const mode of ['train', 'eval'] as const) {
  test(`router (${mode}): selection rule, softmax of raw logits, and backward by finite differences`, () => {
    const { T, H, E } = RD;
    const { value: r, margin } = drawWithMargin(
      (a) => drawRouter(100 + a + (mode === 'eval' ? 50 : 0)),
      (r) => monetRouterSavedMargin(routerForward(r, mode).saved, r.x, r.p, RD),
    );
    assert.ok(margin >= MIN_MARGIN);
    const base = routerForward(r, mode);
    const { saved } = base;
    // each (t, h): threshold s = min(max n, sigma); mask = n ≥ s; g = softmax of z over the mask
    for (const [g, n, mask, W] of [
      [base.g1, saved.bn1.xhat, saved.mask1, r.p['w1.weight']],
      [base.g2, saved.bn2.xhat, saved.mask2, r.p['w2.weight']],
    ] as const) {
      for (let t = 0; t < T; t++)
        for (let h = 0; h < H; h++) {
          const row = (t * H + h) * E;
          const nmax = Math.max(...n.subarray(row, row + E));
          const s = Math.min(nmax, saved.sigma);
          let sum = 0,
            cnt = 0;
          const z: number[] = [];
          for (let i = 0; i < E; i++) {
            let zi = 0;
            for (let c = 0; c < RD.d; c++) zi += W[(h * E + i) * RD.d + c] * r.x[t * RD.d + c];
            z.push(zi);
          }
          let denom = 0;
          for (let i = 0; i < E; i++) if (n[row + i] >= s) denom += Math.exp(z[i]);
          for (let i = 0; i < E; i++) {
            assert.is(mask[row + i], n[row + i] >= s ? 1 : 0);
            const want = mask[row + i] ? Math.exp(z[i]) / denom : 0;
            assert.ok(Math.abs(g[row + i] - want) < 1e-14, 'g = softmax of the raw logits over the selected experts');
            sum += g[row + i];
            cnt += mask[row + i];
          }
          assert.ok(Math.abs(sum - 1) < 1e-14);
          assert.ok(cnt >= 1, 'the clamp keeps at least one expert');
        }
    }
    // backward: L = Σ g1⊙dg1 + Σ g2⊙dg2; decisions must not flip under the FD steps
    const f = () => {
      const o = routerForward(r, mode);
      assert.ok(
        arraysEqual(o.saved.mask1, saved.mask1) && arraysEqual(o.saved.mask2, saved.mask2),
        'a routing decision flipped under a finite-difference step',
      );
      return dot(o.g1, r.dg1) + dot(o.g2, r.dg2);
    };
    const dx = new Float64Array(r.x.length);
    const grads = {
      'w1.weight': new Float64Array(r.p['w1.weight'].length),
      'w2.weight': new Float64Array(r.p['w2.weight'].length),
    };
    monetRouterBackward(dx, grads, r.dg1, r.dg2, r.x, r.p, saved, RD);
    checkGrads(`router ${mode}`, f, { x: r.x, ...r.p }, { x: dx, ...grads });
  });
}

test('router: with max n < sigma only the argmax is kept; ≥ keeps exact ties', () => {
  // H = 1, E = 4, topk = 1 → sigma = Φ⁻¹(3/4) ≈ 0.674. Eval mode with running stats (0, 1 − eps): n = z.
  const T = 1,
    d = 2,
    H = 1,
    E = 4;
  const state: MonetRouterState = {
    'norm1.running_mean': new Float64Array(1),
    'norm1.running_var': new Float64Array([1 - 1e-5]),
    'norm2.running_mean': new Float64Array(1),
    'norm2.running_var': new Float64Array([1 - 1e-5]),
  };
  const x = new Float64Array([1, 0]);
  // router 1: logits (0.1, 0.5, 0.3, −0.2): max 0.5 < sigma → only expert 1
  // router 2: logits (2, 0.2, 2, 1): experts 0 and 2 tie above sigma, 3 is above sigma too → {0, 2, 3}
  const w1 = new Float64Array([0.1, 0, 0.5, 0, 0.3, 0, -0.2, 0]);
  const w2 = new Float64Array([2, 0, 0.2, 0, 2, 0, 1, 0]);
  const g1 = new Float64Array(E),
    g2 = new Float64Array(E);
  const s = monetRouterForward(
    g1,
    g2,
    x,
    { 'w1.weight': w1, 'w2.weight': w2 },
    state,
    null,
    { T, d, H, E },
    { topk: 1, mode: 'eval', bnEps: 1e-5, bnMomentum: 0.1 },
  );
  assert.equal([...s.mask1], [0, 1, 0, 0]);
  assert.equal([...g1], [0, 1, 0, 0]);
  assert.equal([...s.mask2], [1, 0, 1, 1]);
  assert.ok(g2[0] === g2[2] && g2[0] > g2[3] && g2[1] === 0, 'tied experts get equal weight');
  assert.ok(Math.abs(g2[0] - Math.exp(2) / (2 * Math.exp(2) + Math.exp(1))) < 1e-15);
});

test('monet-router case: outputs, next running stats, gradInit accumulation, forwardOnly, shape errors', () => {
  const { T, d, H, E } = RD;
  const r = drawRouter(101);
  const tensors = new Map([
    ['in.x', f64([T, d], r.x)],
    ['in.dg1', f64([T, H, E], r.dg1)],
    ['in.dg2', f64([T, H, E], r.dg2)],
    ['param.w1.weight', f64([H * E, d], r.p['w1.weight'])],
    ['param.w2.weight', f64([H * E, d], r.p['w2.weight'])],
    ...Object.entries(r.state).map(([k, v]) => [`state.${k}`, f64([H], v)] as const),
  ]);
  const config = {
    hidden_size: d,
    moe_experts: E,
    moe_heads: H,
    moe_topk: 2,
    mode: 'train',
    bn_eps: 1e-5,
    bn_momentum: 0.1,
  };
  const out = runMonetRouterCase({ kind: 'monet-router', config, tensors });
  for (const k of [
    'out.g1',
    'out.g2',
    'idx.mask1',
    'idx.mask2',
    'grad.in.x',
    'grad.param.w1.weight',
    'grad.param.w2.weight',
    'next.norm1.running_mean',
    'next.norm1.running_var',
    'next.norm2.running_mean',
    'next.norm2.running_var',
  ])
    assert.ok(out.has(k), `missing ${k}`);
  // next stats: BN train-mode update of the raw logits z1 = x·w1ᵀ, head 0, computed here directly
  let s = 0,
    s2 = 0;
  for (let t = 0; t < T; t++)
    for (let i = 0; i < E; i++) {
      let z = 0;
      for (let c = 0; c < d; c++) z += r.p['w1.weight'][i * d + c] * r.x[t * d + c];
      s += z;
      s2 += z * z;
    }
  const n = T * E,
    mean = s / n,
    varU = (s2 - n * mean * mean) / (n - 1);
  assert.ok(
    Math.abs(D(out, 'next.norm1.running_mean')[0] - (0.9 * r.state['norm1.running_mean'][0] + 0.1 * mean)) < 1e-13,
  );
  assert.ok(
    Math.abs(D(out, 'next.norm1.running_var')[0] - (0.9 * r.state['norm1.running_var'][0] + 0.1 * varU)) < 1e-12,
  );
  // gradInit adds
  const init = new Map([['grad.param.w1.weight', f64([H * E, d], new Float64Array(H * E * d).fill(1))]]);
  const out2 = runMonetRouterCase({ kind: 'monet-router', config, tensors }, { gradInit: init });
  const a = D(out, 'grad.param.w1.weight'),
    b = D(out2, 'grad.param.w1.weight');
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i] - (a[i] + 1)) < 1e-14);
  // forwardOnly: no grad.*
  const out3 = runMonetRouterCase({ kind: 'monet-router', config, tensors }, { forwardOnly: true });
  assert.ok(![...out3.keys()].some((k) => k.startsWith('grad.')));
  // errors name the tensor / key
  const bad = new Map(tensors);
  bad.set('param.w2.weight', f64([H * E, d + 1]));
  assert.throws(
    () => runMonetRouterCase({ kind: 'monet-router', config, tensors: bad }),
    /param\.w2\.weight: expected shape \[12,5\], found \[12,6\]/,
  );
  assert.throws(
    () => runMonetRouterCase({ kind: 'monet-router', config: { ...config, moe_topk: 6 }, tensors }),
    /moe_topk/,
  );
  const evalNoState = new Map([...tensors].filter(([k]) => !k.startsWith('state.')));
  assert.throws(
    () => runMonetRouterCase({ kind: 'monet-router', config: { ...config, mode: 'eval' }, tensors: evalNoState }),
    /missing tensor state\.norm1\.running_mean/,
  );
});

test.run();
