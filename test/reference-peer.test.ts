// PEER reference: product-key retrieval against brute force over all N keys, tie rules at all three top-k stages,
// BatchNorm train/eval, finite differences for every parameter and the input, and the `peer` case runner.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  peerBackward,
  peerForward,
  type PeerDims,
  type PeerOptions,
  type PeerParams,
  type PeerState,
} from '../reference/peer.ts';
import { Rng } from '../reference/rng.ts';
import { f64 } from '../src/tensor.ts';
import { zerosLike } from '../reference/common.ts';
import { lmBackward, lmForward, type LmConfig } from '../reference/lm.ts';
import { drawWithMargin, lmMargin, MIN_MARGIN, peerMargin } from '../src/fixtures/margins.ts';
import { runReferenceCase as runPeerCase } from '../src/fixtures/reference-cases.ts';
import { TINY_LM_BASE } from '../src/kinds/examples.ts';
import { initLm, lmParams, lmState, parseLm } from '../src/kinds/lm.ts';

type Config = Record<string, unknown>;
const buildLm = parseLm;
const lmParamSpecs = (m: LmConfig) => [...lmParams(m)];
const lmStateSpecs = (m: LmConfig) => [...lmState(m)];
import { arraysEqual, checkGrads, D, dot } from './fd-helpers.ts';

const DIMS: PeerDims = { T: 6, d: 5, N: 16, H: 2, k: 2, dk: 4 };

interface PeerDraw {
  x: Float64Array;
  p: PeerParams;
  state: PeerState;
  dy: Float64Array;
}

function drawPeer(seed: number, dims: PeerDims = DIMS): PeerDraw {
  const { T, d, N, H, dk } = dims;
  const K = Math.sqrt(N);
  const dq = H * dk;
  const rng = new Rng(seed);
  return {
    x: rng.normals(T * d),
    p: {
      'query.weight': rng.normals(dq * d, 0.5),
      'query.bias': rng.normals(dq, 0.3),
      'query_bn.weight': Float64Array.from(rng.normals(dq, 0.2), (v) => 1 + v),
      'query_bn.bias': rng.normals(dq, 0.2),
      sub_keys: rng.normals(2 * K * (dk / 2)),
      w_down: rng.normals(N * d, 0.6),
      w_up: rng.normals(N * d, 0.6),
    },
    state: {
      'query_bn.running_mean': rng.normals(dq, 0.3),
      'query_bn.running_var': Float64Array.from(rng.normals(dq), (v) => 0.5 + v * v),
    },
    dy: rng.normals(T * d),
  };
}

const opts = (mode: 'train' | 'eval', activation: 'relu' | 'gelu'): PeerOptions => ({
  activation,
  mode,
  bnEps: 1e-5,
  bnMomentum: 0.1,
});

function forward(s: PeerDraw, o: PeerOptions, dims: PeerDims = DIMS) {
  const y = new Float64Array(dims.T * dims.d);
  const saved = peerForward(y, s.x, s.p, s.state, null, dims, o);
  return { y, saved };
}

/** Routing margin plus, for relu, how far every selected expert's pre-activation is from the kink at 0. */
function margin(s: PeerDraw, o: PeerOptions): number {
  const { saved } = forward(s, o);
  let m = peerMargin(saved, s.p, DIMS);
  if (o.activation === 'relu') for (const v of saved.hpre) m = Math.min(m, Math.abs(v));
  return m;
}

test('PEER retrieval equals brute-force top-k over all N product keys (descending, ties → lower id)', () => {
  const s = drawPeer(51);
  const { T, N, H, k, dk } = DIMS;
  const K = Math.sqrt(N),
    half = dk / 2;
  const { saved } = forward(s, opts('train', 'gelu'));
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) {
      const q = saved.q.subarray(t * H * dk + h * dk, t * H * dk + (h + 1) * dk);
      const all: Array<[number, number]> = [];
      for (let a = 0; a < K; a++)
        for (let b = 0; b < K; b++) {
          let sc = 0;
          for (let c = 0; c < half; c++)
            sc += q[c] * s.p.sub_keys[a * half + c] + q[half + c] * s.p.sub_keys[(K + b) * half + c];
          all.push([sc, a * K + b]);
        }
      all.sort((u, v) => v[0] - u[0] || u[1] - v[1]);
      const want = all.slice(0, k).map((e) => e[1]);
      assert.equal([...saved.ids.subarray((t * H + h) * k, (t * H + h + 1) * k)], want, `token ${t} head ${h}`);
      // softmax over the k scores of this head
      const w = saved.w.subarray((t * H + h) * k, (t * H + h + 1) * k);
      const z = all.slice(0, k).map((e) => Math.exp(e[0]));
      const zs = z.reduce((a, b) => a + b, 0);
      for (let r = 0; r < k; r++) assert.ok(Math.abs(w[r] - z[r] / zs) < 1e-14);
    }
});

test('PEER ties: lower sub-key index at stages 1–2, lower expert id at stage 3', () => {
  // K = 4, k = 2, H = 1, dk = 2 (one number per half). Eval BN with mean 0, var 1 − eps, γ = 1, β = 1 and a zero
  // query Linear make q = (1, 1), so the scores are the sub-keys themselves.
  const dims: PeerDims = { T: 1, d: 2, N: 16, H: 1, k: 2, dk: 2 };
  const p: PeerParams = {
    'query.weight': new Float64Array(4),
    'query.bias': new Float64Array(2),
    'query_bn.weight': new Float64Array([1, 1]),
    'query_bn.bias': new Float64Array([1, 1]),
    // first half scores (1, 3, 3, 0): a ∈ {1, 2} tie; second half (2, 2, 0, 0): b ∈ {0, 1} tie
    sub_keys: new Float64Array([1, 3, 3, 0, 2, 2, 0, 0]),
    w_down: new Float64Array(32).fill(0.1),
    w_up: new Float64Array(32).fill(0.1),
  };
  const state: PeerState = {
    'query_bn.running_mean': new Float64Array(2),
    'query_bn.running_var': new Float64Array(2).fill(1 - 1e-5),
  };
  const y = new Float64Array(2);
  const s = peerForward(y, new Float64Array([0.3, -0.2]), p, state, null, dims, opts('eval', 'gelu'));
  // all four candidates (1,0), (1,1), (2,0), (2,1) score 5: ids 4, 5, 8, 9 → the two lowest
  assert.equal([...s.ids], [4, 5]);
  assert.equal([...s.ia], [1, 1]);
  assert.equal([...s.ib], [0, 1]);
  assert.equal([...s.w], [0.5, 0.5]);
  assert.is(peerMargin(s, p, dims), 0, 'exact ties are reported as a zero margin');
});

for (const mode of ['train', 'eval'] as const) {
  for (const activation of ['gelu', 'relu'] as const) {
    test(`PEER (${mode}, ${activation}): finite differences for every parameter and the input`, () => {
      const o = opts(mode, activation);
      const { value: s, margin: mg } = drawWithMargin(
        (a) => drawPeer(500 + a + (mode === 'eval' ? 100 : 0) + (activation === 'relu' ? 200 : 0)),
        (s) => margin(s, o),
      );
      assert.ok(mg >= MIN_MARGIN);
      const base = forward(s, o);
      const f = () => {
        const r = forward(s, o);
        assert.ok(
          arraysEqual(r.saved.ids, base.saved.ids),
          'a routing decision flipped under a finite-difference step',
        );
        return dot(r.y, s.dy);
      };
      const dx = new Float64Array(s.x.length);
      const g: Record<string, Float64Array> = {};
      for (const [k, v] of Object.entries(s.p)) g[k] = new Float64Array(v.length);
      peerBackward(dx, g as PeerParams, s.dy, s.x, s.p, base.saved, DIMS, o);
      // train-mode BN removes the mean: the query bias gets exactly no gradient (up to rounding)
      if (mode === 'train') {
        const scale = Math.max(...g['query.weight'].map(Math.abs));
        assert.ok(
          g['query.bias'].every((v) => Math.abs(v) < 1e-12 * Math.max(1, scale)),
          'query.bias gradient vanishes under train-mode BN',
        );
      }
      const tensors: Record<string, Float64Array> = { x: s.x, ...s.p };
      if (mode === 'train') delete tensors['query.bias']; // its true gradient is 0: relative error is meaningless
      checkGrads(`peer ${mode} ${activation}`, f, tensors, { x: dx, ...g });
    });
  }
}

test('PEER: scatter-add when several tokens and heads select the same expert', () => {
  // N = 4 experts, k = 2 of them per head, 3 heads, 5 tokens: collisions are certain
  const dims: PeerDims = { T: 5, d: 3, N: 4, H: 3, k: 2, dk: 2 };
  const o = opts('train', 'gelu');
  const { value: s } = drawWithMargin(
    (a) => drawPeer(700 + a, dims),
    (s) => peerMargin(forward(s, o, dims).saved, s.p, dims),
  );
  const base = forward(s, o, dims);
  const counts = new Map<number, number>();
  for (const id of base.saved.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  assert.ok(Math.max(...counts.values()) >= 3, 'some expert is selected several times');
  const f = () => dot(forward(s, o, dims).y, s.dy);
  const dx = new Float64Array(s.x.length);
  const g: Record<string, Float64Array> = {};
  for (const [k, v] of Object.entries(s.p)) g[k] = new Float64Array(v.length);
  peerBackward(dx, g as PeerParams, s.dy, s.x, s.p, base.saved, dims, o);
  checkGrads('peer collisions', f, { w_down: s.p.w_down, w_up: s.p.w_up, sub_keys: s.p.sub_keys }, g);
});

test('peer case: idx.experts, next running stats, gradInit, forwardOnly, config and shape errors', () => {
  const s = drawPeer(52);
  const { T, d, N, H, k, dk } = DIMS;
  const dq = H * dk;
  const K = Math.sqrt(N);
  const tensors = new Map([
    ['in.x', f64([T, d], s.x)],
    ['in.dy', f64([T, d], s.dy)],
    ['param.query.weight', f64([dq, d], s.p['query.weight'])],
    ['param.query.bias', f64([dq], s.p['query.bias'])],
    ['param.query_bn.weight', f64([dq], s.p['query_bn.weight'])],
    ['param.query_bn.bias', f64([dq], s.p['query_bn.bias'])],
    ['param.sub_keys', f64([2, K, dk / 2], s.p.sub_keys)],
    ['param.w_down', f64([N, d], s.p.w_down)],
    ['param.w_up', f64([N, d], s.p.w_up)],
    ['state.query_bn.running_mean', f64([dq], s.state['query_bn.running_mean'])],
    ['state.query_bn.running_var', f64([dq], s.state['query_bn.running_var'])],
  ]);
  const config = {
    hidden_size: d,
    num_experts: N,
    heads: H,
    top_k: k,
    key_dim: dk,
    activation: 'gelu',
    mode: 'train',
    bn_eps: 1e-5,
    bn_momentum: 0.1,
  };
  const out = runPeerCase({ kind: 'peer', config, tensors });
  const ids = out.get('idx.experts')!;
  assert.is(ids.dtype, 'I32');
  assert.equal(ids.shape, [T, H, k]);
  assert.ok(arraysEqual(ids.data as Int32Array, forward(s, opts('train', 'gelu')).saved.ids));
  // next running stats: momentum 0.1, unbiased variance of the query pre-activations over the T tokens
  const c = 3;
  const pre: number[] = [];
  for (let t = 0; t < T; t++) {
    let v = s.p['query.bias'][c];
    for (let i = 0; i < d; i++) v += s.p['query.weight'][c * d + i] * s.x[t * d + i];
    pre.push(v);
  }
  const mean = pre.reduce((a, b) => a + b, 0) / T;
  const varU = pre.reduce((a, b) => a + (b - mean) ** 2, 0) / (T - 1);
  assert.ok(
    Math.abs(D(out, 'next.query_bn.running_mean')[c] - (0.9 * s.state['query_bn.running_mean'][c] + 0.1 * mean)) <
      1e-14,
  );
  assert.ok(
    Math.abs(D(out, 'next.query_bn.running_var')[c] - (0.9 * s.state['query_bn.running_var'][c] + 0.1 * varU)) < 1e-13,
  );
  const init = new Map([['grad.param.w_up', f64([N, d], new Float64Array(N * d).fill(3))]]);
  const a = D(out, 'grad.param.w_up'),
    b = D(runPeerCase({ kind: 'peer', config, tensors }, { gradInit: init }), 'grad.param.w_up');
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i] - (a[i] + 3)) < 1e-14);
  const fo = runPeerCase({ kind: 'peer', config, tensors }, { forwardOnly: true });
  assert.ok(![...fo.keys()].some((n) => n.startsWith('grad.')) && fo.has('next.query_bn.running_var'));
  const evalOut = runPeerCase({ kind: 'peer', config: { ...config, mode: 'eval' }, tensors });
  assert.ok(!evalOut.has('next.query_bn.running_mean'), 'eval mode reports no next state');
  assert.throws(
    () => runPeerCase({ kind: 'peer', config: { ...config, num_experts: 15 }, tensors }),
    /num_experts: expected a perfect square/,
  );
  assert.throws(
    () => runPeerCase({ kind: 'peer', config: { ...config, top_k: 5 }, tensors }),
    /top_k: expected at most √num_experts = 4/,
  );
  assert.throws(
    () => runPeerCase({ kind: 'peer', config: { ...config, activation: 'swiglu' }, tensors }),
    /config\.activation/,
  );
  const bad = new Map(tensors);
  bad.set('param.sub_keys', f64([2, K, dk]));
  assert.throws(
    () => runPeerCase({ kind: 'peer', config, tensors: bad }),
    /param\.sub_keys: expected shape \[2,4,2\], found \[2,4,4\]/,
  );
  const one = new Map(tensors);
  one.set('in.x', f64([1, d], s.x.subarray(0, d)));
  one.set('in.dy', f64([1, d], s.dy.subarray(0, d)));
  assert.throws(() => runPeerCase({ kind: 'peer', config, tensors: one }), /at least 2 tokens/);
});

// ---------------------------------------------------------------------------------------------------------------
// PEER inside the reference LM

const lmPeerCfg = (mode: 'train' | 'eval'): Config => ({
  ...TINY_LM_BASE,
  num_hidden_layers: 4,
  ffn: 'peer',
  mode,
  peer_layers: [1, 2],
  num_experts: 16,
  heads: 2,
  top_k: 2,
  key_dim: 4,
  activation: 'gelu',
  bn_eps: 1e-5,
  bn_momentum: 0.1,
  intermediate_size: 6,
});

for (const mode of ['train', 'eval'] as const) {
  test(`lm peer (${mode}) on layers 1 and 2, dense elsewhere: names, state, FD for every parameter`, () => {
    const m = buildLm(lmPeerCfg(mode), 'test');
    const names = lmParamSpecs(m).map((s) => s.name);
    for (const i of [1, 2])
      for (const n of ['query.weight', 'query.bias', 'query_bn.weight', 'query_bn.bias', 'sub_keys', 'w_down', 'w_up'])
        assert.ok(names.includes(`model.layers.${i}.mlp.${n}`), `layer ${i} mlp.${n}`);
    for (const i of [0, 3]) {
      assert.ok(
        names.includes(`model.layers.${i}.mlp.up_proj.weight`) &&
          names.includes(`model.layers.${i}.mlp.down_proj.weight`),
      );
      assert.not.ok(names.includes(`model.layers.${i}.mlp.w_up`));
    }
    assert.equal(
      lmStateSpecs(m).map((s) => s.name),
      [
        'model.layers.1.mlp.query_bn.running_mean',
        'model.layers.1.mlp.query_bn.running_var',
        'model.layers.2.mlp.query_bn.running_mean',
        'model.layers.2.mlp.query_bn.running_var',
      ],
    );
    const rng = new Rng(mode === 'train' ? 3000 : 3100);
    const [B, S] = [2, 4];
    const { value } = drawWithMargin(
      () => {
        const { params, state } = initLm(m, rng, 0.5);
        for (const s of lmParamSpecs(m))
          if (s.init !== 'normal') params[s.name] = params[s.name].map((v) => v + 0.3 * rng.normal());
        for (const s of lmStateSpecs(m))
          if (s.init === 'ones') state[s.name] = state[s.name].map(() => 0.5 + rng.uniform());
        return { params, state, tokens: rng.ints(B * S, m.V) };
      },
      (d) => lmMargin(m, d.params, lmForward(m, d.params, d.tokens, B, S, d.state)),
    );
    const { params, state, tokens } = value;
    const fwd = lmForward(m, params, tokens, B, S, state);
    assert.equal(Object.keys(fwd.next).length, mode === 'train' ? 4 : 0);
    const grads = zerosLike(params);
    lmBackward(m, params, fwd, grads);
    const loss = () => lmForward(m, params, tokens, B, S, state).loss;
    for (const name of Object.keys(params)) {
      // train-mode BN: the query bias has no gradient (checked to be ~0 instead)
      if (mode === 'train' && name.endsWith('query.bias')) {
        assert.ok(
          grads[name].every((v) => Math.abs(v) < 1e-12),
          `${name} gradient vanishes under train-mode BN`,
        );
        continue;
      }
      checkGrads(
        `lm peer ${mode}`,
        loss,
        { [name]: params[name] },
        { [name]: grads[name] },
        { maxEntries: name.includes('.mlp.') ? 1e9 : 12 },
      );
    }
  });
}

test('lm peer: config errors name the key', () => {
  assert.throws(
    () => buildLm({ ...lmPeerCfg('train'), peer_layers: [4] }, 'cfg'),
    /cfg: config\.peer_layers: expected a non-empty array of distinct layer indices in \[0, 4\)/,
  );
  assert.throws(() => buildLm({ ...lmPeerCfg('train'), activation: 'swiglu' }, 'cfg'), /cfg: config\.activation/);
  assert.throws(
    () => buildLm({ ...lmPeerCfg('train'), intermediate_size: undefined }, 'cfg'),
    /config\.intermediate_size/,
  );
  // every layer PEER: no dense keys needed
  const all = buildLm({ ...lmPeerCfg('eval'), peer_layers: [0, 1, 2, 3], intermediate_size: undefined }, 'cfg');
  assert.is(lmStateSpecs(all).length, 8);
});

test.run();
