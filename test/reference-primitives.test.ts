// Float64 finite-difference checks of every primitive layer in reference/ (each input and each parameter), plus
// sanity properties of RoPE and causal attention, and known GELU values.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  activationBackward,
  activationForward,
  ACTIVATIONS,
  act,
  actGrad,
  swigluBackward,
  swigluForward,
} from '../reference/activations.ts';
import { attentionBackward, attentionForward } from '../reference/attention.ts';
import { crossEntropyBackward, crossEntropyForward } from '../reference/cross-entropy.ts';
import { embeddingBackward, embeddingForward } from '../reference/embedding.ts';
import { gradCheck, type GradCheckTensor } from '../reference/gradcheck.ts';
import { linearBackward, linearForward } from '../reference/linear.ts';
import { Rng } from '../reference/rng.ts';
import { rmsnormBackward, rmsnormForward } from '../reference/rmsnorm.ts';
import { ropeBackward, ropeForward, ropeTables } from '../reference/rope.ts';
import { softmaxBackward, softmaxForward } from '../reference/softmax.ts';

const TOL = 1e-6;

/** Σ out ⊙ dout: the scalar whose gradient a layer backward computes when handed dout. */
function dotLoss(out: Float64Array, dout: Float64Array): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * dout[i];
  return s;
}

function expectAllClose(loss: () => number, tensors: GradCheckTensor[], label: string): void {
  for (const r of gradCheck(loss, tensors))
    assert.ok(r.relError <= TOL, `${label}: ${r.name} relative error ${r.relError.toExponential(2)} > ${TOL}`);
}

test('linear: dx, dW, db match finite differences (PyTorch (out, in) layout)', () => {
  const rng = new Rng(1);
  const [N, I, O] = [3, 4, 5];
  const x = rng.normals(N * I);
  const W = rng.normals(O * I);
  const b = rng.normals(O);
  const dy = rng.normals(N * O);
  const y = new Float64Array(N * O);
  const loss = () => {
    linearForward(y, x, W, b, N, I, O);
    return dotLoss(y, dy);
  };
  // y[0, 1] spelled out once, so the layout is pinned independently of the loop code.
  loss();
  let y01 = b[1];
  for (let i = 0; i < I; i++) y01 += x[i] * W[1 * I + i];
  assert.ok(Math.abs(y[1] - y01) < 1e-14, 'y[n, o] = Σ_i x[n, i]·W[o, i] + b[o]');
  const dx = new Float64Array(N * I);
  const dW = new Float64Array(O * I);
  const db = new Float64Array(O);
  linearBackward(dx, dW, db, dy, x, W, N, I, O);
  expectAllClose(
    loss,
    [
      { name: 'x', value: x, grad: dx },
      { name: 'W', value: W, grad: dW },
      { name: 'b', value: b, grad: db },
    ],
    'linear',
  );
});

test('linear backward accumulates into existing gradients', () => {
  const rng = new Rng(2);
  const x = rng.normals(6);
  const W = rng.normals(6);
  const dy = rng.normals(4);
  const once = new Float64Array(6);
  linearBackward(null, once, null, dy, x, W, 2, 3, 2);
  const twice = new Float64Array(6);
  linearBackward(null, twice, null, dy, x, W, 2, 3, 2);
  linearBackward(null, twice, null, dy, x, W, 2, 3, 2);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(twice[i] - 2 * once[i]) < 1e-14);
});

test('embedding: dW scatter-adds repeated tokens; out-of-range ids are refused', () => {
  const rng = new Rng(3);
  const [V, d] = [5, 3];
  const W = rng.normals(V * d);
  const tokens = Int32Array.from([1, 4, 1, 0]);
  const dy = rng.normals(tokens.length * d);
  const y = new Float64Array(tokens.length * d);
  const loss = () => {
    embeddingForward(y, tokens, W, tokens.length, V, d);
    return dotLoss(y, dy);
  };
  const dW = new Float64Array(V * d);
  embeddingBackward(dW, dy, tokens, tokens.length, d);
  expectAllClose(loss, [{ name: 'W', value: W, grad: dW }], 'embedding');
  assert.throws(
    () => embeddingForward(y, Int32Array.from([5, 0, 0, 0]), W, 4, V, d),
    /token id 5 at position 0 is outside \[0, 5\)/,
  );
});

test('rmsnorm: dx and dweight match finite differences', () => {
  const rng = new Rng(4);
  const [N, C] = [3, 6];
  const x = rng.normals(N * C);
  const w = rng.normals(C);
  const dy = rng.normals(N * C);
  const y = new Float64Array(N * C);
  const loss = () => {
    rmsnormForward(y, x, w, N, C, 1e-6);
    return dotLoss(y, dy);
  };
  const saved = rmsnormForward(y, x, w, N, C, 1e-6);
  const dx = new Float64Array(N * C);
  const dw = new Float64Array(C);
  rmsnormBackward(dx, dw, dy, x, w, saved, N, C);
  expectAllClose(
    loss,
    [
      { name: 'x', value: x, grad: dx },
      { name: 'weight', value: w, grad: dw },
    ],
    'rmsnorm',
  );
  // With unit weights each output row has root-mean-square 1 (up to eps).
  const ones = new Float64Array(C).fill(1);
  rmsnormForward(y, x, ones, N, C, 0);
  let ss = 0;
  for (let c = 0; c < C; c++) ss += y[c] * y[c];
  assert.ok(Math.abs(ss / C - 1) < 1e-12);
});

test('rope: backward matches finite differences; position 0 is the identity; norms are preserved', () => {
  const rng = new Rng(5);
  const [B, S, nh, hd] = [2, 4, 3, 6];
  const tab = ropeTables(S, hd, 10000);
  const x = rng.normals(B * S * nh * hd);
  const dy = rng.normals(x.length);
  const y = new Float64Array(x.length);
  const loss = () => {
    ropeForward(y, x, tab, B, S, nh, hd);
    return dotLoss(y, dy);
  };
  const dx = new Float64Array(x.length);
  ropeBackward(dx, dy, tab, B, S, nh, hd);
  expectAllClose(loss, [{ name: 'x', value: x, grad: dx }], 'rope');
  ropeForward(y, x, tab, B, S, nh, hd);
  for (let i = 0; i < nh * hd; i++) assert.is(y[i], x[i]); // b = 0, s = 0: angle 0
  for (let v = 0; v < B * S * nh; v++) {
    let a = 0;
    let b = 0;
    for (let i = 0; i < hd; i++) {
      a += x[v * hd + i] ** 2;
      b += y[v * hd + i] ** 2;
    }
    assert.ok(Math.abs(a - b) < 1e-12 * a, 'a rotation preserves the norm');
  }
});

test('rope: rotate-half pairs channel i with i + hd/2 at angle s·theta^(−2i/hd)', () => {
  const [S, hd, theta] = [3, 4, 500];
  const tab = ropeTables(S, hd, theta);
  const x = Float64Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]); // position 2, unit vector on channel 0
  const y = new Float64Array(12);
  ropeForward(y, x, tab, 1, S, 1, hd);
  const angle = 2 * 1; // s = 2, i = 0: inv_freq = theta^0 = 1
  assert.ok(Math.abs(y[8] - Math.cos(angle)) < 1e-15);
  assert.ok(Math.abs(y[8 + 2] - Math.sin(angle)) < 1e-15, 'channel 0 rotates into channel hd/2 (not channel 1)');
  assert.is(y[9], 0);
  const x1 = Float64Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]); // channel 1: inv_freq = theta^(−2/4)
  ropeForward(y, x1, tab, 1, S, 1, hd);
  assert.ok(Math.abs(y[9] - Math.cos(2 / Math.sqrt(theta))) < 1e-15);
  assert.ok(Math.abs(y[11] - Math.sin(2 / Math.sqrt(theta))) < 1e-15);
});

test('rope: q·k after RoPE depends only on the position difference', () => {
  const rng = new Rng(6);
  const [S, hd] = [6, 8];
  const tab = ropeTables(S, hd, 10000);
  const q = rng.normals(hd);
  const k = rng.normals(hd);
  const at = (v: Float64Array, s: number) => {
    const x = new Float64Array(S * hd);
    x.set(v, s * hd);
    const y = new Float64Array(S * hd);
    ropeForward(y, x, tab, 1, S, 1, hd);
    return y.subarray(s * hd, s * hd + hd);
  };
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);
  const d1 = dot(at(q, 3), at(k, 1));
  const d2 = dot(at(q, 5), at(k, 3));
  assert.ok(Math.abs(d1 - d2) < 1e-12, `relative position: ${d1} vs ${d2}`);
});

test('attention (grouped KV heads): dq, dk, dv match finite differences', () => {
  const rng = new Rng(7);
  const dims = { B: 2, S: 4, nH: 4, nKV: 2, hd: 3 };
  const { B, S, nH, nKV, hd } = dims;
  const q = rng.normals(B * S * nH * hd);
  const k = rng.normals(B * S * nKV * hd);
  const v = rng.normals(B * S * nKV * hd);
  const dy = rng.normals(q.length);
  const y = new Float64Array(q.length);
  const loss = () => {
    attentionForward(y, q, k, v, dims);
    return dotLoss(y, dy);
  };
  const saved = attentionForward(y, q, k, v, dims);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  attentionBackward(dq, dk, dv, dy, q, k, v, saved, dims);
  expectAllClose(
    loss,
    [
      { name: 'q', value: q, grad: dq },
      { name: 'k', value: k, grad: dk },
      { name: 'v', value: v, grad: dv },
    ],
    'attention',
  );
});

test('attention is causal: changing future keys/values leaves earlier outputs unchanged', () => {
  const rng = new Rng(8);
  const dims = { B: 1, S: 5, nH: 2, nKV: 1, hd: 4 };
  const { S, nH, nKV, hd } = dims;
  const q = rng.normals(S * nH * hd);
  const k = rng.normals(S * nKV * hd);
  const v = rng.normals(S * nKV * hd);
  const y1 = new Float64Array(q.length);
  const saved = attentionForward(y1, q, k, v, dims);
  const k2 = Float64Array.from(k);
  const v2 = Float64Array.from(v);
  for (let i = 3 * nKV * hd; i < k.length; i++) {
    k2[i] += 1;
    v2[i] -= 2;
  }
  const y2 = new Float64Array(q.length);
  attentionForward(y2, q, k2, v2, dims);
  for (let i = 0; i < 3 * nH * hd; i++) assert.is(y2[i], y1[i], `position ${Math.floor(i / (nH * hd))} changed`);
  let changed = false;
  for (let i = 3 * nH * hd; i < q.length; i++) if (y2[i] !== y1[i]) changed = true;
  assert.ok(changed, 'positions ≥ 3 see the change');
  for (let h = 0; h < nH; h++)
    for (let s = 0; s < S; s++) for (let t = s + 1; t < S; t++) assert.is(saved.att[(h * S + s) * S + t], 0);
  // Position 0 attends only to itself, so its output is exactly v[0] of its KV head.
  for (let i = 0; i < hd; i++) assert.ok(Math.abs(y1[i] - v[i]) < 1e-15);
});

test('attention: query head h reads KV head floor(h / (nH / nKV))', () => {
  const rng = new Rng(9);
  const dims = { B: 1, S: 1, nH: 4, nKV: 2, hd: 2 };
  const q = rng.normals(8);
  const k = rng.normals(4);
  const v = Float64Array.from([1, 2, 3, 4]); // KV head 0 = (1, 2), KV head 1 = (3, 4)
  const y = new Float64Array(8);
  attentionForward(y, q, k, v, dims); // S = 1: every head outputs its KV head's v exactly
  assert.equal(Array.from(y), [1, 2, 1, 2, 3, 4, 3, 4]);
});

test('softmax: backward matches finite differences; rows sum to 1; large logits do not overflow', () => {
  const rng = new Rng(10);
  const [N, C] = [3, 5];
  const x = rng.normals(N * C);
  const dy = rng.normals(N * C);
  const y = new Float64Array(N * C);
  const loss = () => {
    softmaxForward(y, x, N, C);
    return dotLoss(y, dy);
  };
  loss();
  const dx = new Float64Array(N * C);
  softmaxBackward(dx, dy, y, N, C);
  expectAllClose(loss, [{ name: 'x', value: x, grad: dx }], 'softmax');
  const big = Float64Array.from([1000, 1001, 999]);
  const p = new Float64Array(3);
  softmaxForward(p, big, 1, 3);
  assert.ok(Math.abs(p[0] + p[1] + p[2] - 1) < 1e-15 && p.every(Number.isFinite));
});

test('cross-entropy: mean over B·(S−1) next-token predictions; backward matches finite differences', () => {
  const rng = new Rng(11);
  const [B, S, V] = [2, 4, 5];
  const logits = rng.normals(B * S * V);
  const tokens = rng.ints(B * S, V);
  const loss = () => crossEntropyForward(logits, tokens, B, S, V).loss;
  const { loss: L, saved } = crossEntropyForward(logits, tokens, B, S, V);
  // Independent spelling of the definition.
  let sum = 0;
  for (let b = 0; b < B; b++)
    for (let s = 0; s < S - 1; s++) {
      const row = logits.subarray((b * S + s) * V, (b * S + s + 1) * V);
      const lse = Math.log(row.reduce((a, z) => a + Math.exp(z), 0));
      sum += lse - row[tokens[b * S + s + 1]];
    }
  assert.ok(Math.abs(L - sum / (B * (S - 1))) < 1e-14);
  const dl = new Float64Array(logits.length);
  crossEntropyBackward(dl, saved, tokens, B, S, V);
  expectAllClose(loss, [{ name: 'logits', value: logits, grad: dl }], 'cross-entropy');
  for (let b = 0; b < B; b++)
    for (let v = 0; v < V; v++) assert.is(dl[(b * S + S - 1) * V + v], 0, 'the last position predicts nothing');
});

test('activations relu, relu2, gelu, silu and SwiGLU: backward matches finite differences', () => {
  const rng = new Rng(12);
  const n = 20;
  // Away from the ReLU kink at 0, where a central difference straddling it would be meaningless.
  const x = rng.normals(n).map((v) => (Math.abs(v) < 0.05 ? v + 0.1 : v));
  const dy = rng.normals(n);
  const y = new Float64Array(n);
  for (const kind of ACTIVATIONS) {
    const dx = new Float64Array(n);
    activationBackward(kind, dx, dy, x, n);
    expectAllClose(
      () => {
        activationForward(kind, y, x, n);
        return dotLoss(y, dy);
      },
      [{ name: 'x', value: x, grad: dx }],
      kind,
    );
  }
  const up = rng.normals(n);
  const dgate = new Float64Array(n);
  const dup = new Float64Array(n);
  swigluBackward(dgate, dup, dy, x, up, n);
  expectAllClose(
    () => {
      swigluForward(y, x, up, n);
      return dotLoss(y, dy);
    },
    [
      { name: 'gate', value: x, grad: dgate },
      { name: 'up', value: up, grad: dup },
    ],
    'swiglu',
  );
});

test('activation values: relu/relu2 at and around 0; gelu (erf form) against Python math.erfc', () => {
  assert.is(act('relu', -1), 0);
  assert.is(act('relu', 0), 0);
  assert.is(actGrad('relu', 0), 0, 'relu′(0) = 0 as in PyTorch');
  assert.is(act('relu2', 3), 9);
  assert.is(actGrad('relu2', 3), 6);
  assert.is(act('relu2', -3), 0);
  // (x, gelu(x), gelu'(x)) from CPython: 0.5·x·math.erfc(−x/√2) and 0.5·erfc(−x/√2) + x·exp(−x²/2)/√(2π).
  const table: [number, number, number][] = [
    [-9.0, -1.015729565358458e-18, -9.13893737390664e-18],
    [-3.0, -0.004049694094890287, -0.011945647204183927],
    [-0.7, -0.16937455655615113, 0.023385898866340155],
    [0.0, 0.0, 0.5],
    [0.3, 0.18537342665668577, 0.7323277668271098],
    [1.0, 0.8413447460685429, 1.0833154705876864],
    [2.5, 2.4844758366855597, 1.037611085908145],
    [6.0, 5.999999994080474, 1.0000000354687093],
  ];
  for (const [x, g, dg] of table) {
    assert.ok(
      Math.abs(act('gelu', x) - g) <= 1e-14 * Math.abs(g) + 1e-300,
      `gelu(${x}) = ${act('gelu', x)}, expected ${g}`,
    );
    assert.ok(
      Math.abs(actGrad('gelu', x) - dg) <= 1e-13 * Math.abs(dg) + 1e-300,
      `gelu'(${x}) = ${actGrad('gelu', x)}, expected ${dg}`,
    );
  }
  // silu(x) = x·σ(x) stays finite and exact-ish for large |x|.
  assert.is(act('silu', -800), -0);
  assert.ok(Math.abs(act('silu', 40) - 40) < 1e-12);
});

test.run();
