// Every kernel of the contract on WebGPU against the plain-JS device (src/backend/js/, the executable definition of
// each kernel, computing in float64). Each case uploads the same inputs to both devices, runs the kernel, and
// compares EVERY tensor afterwards (outputs, accumulated-into gradients, and inputs that must stay untouched).
// Sizes are small and deliberately odd (not multiples of 4, 16, 64 or 256); integer tensors must match exactly.
// Float tolerance: |gpu − js| ≤ 1e-5 + 2e-4·|js|, since these are float32 kernels on short reductions compared with a
// float64 evaluation rounded once (the fixture tests use the shared checker's f32 preset instead).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest, requireGpu } from './webgpu-setup.ts';
import { WebGpuDevice } from '../src/backend/webgpu/device.ts';
import { createJsDevice } from '../src/backend/js/device.ts';
import { KERNELS, type ActKind } from '../src/backend/kernels.ts';
import {
  assertMatchesJs,
  runOn,
  seededInputs,
  widenKernelCases,
  bf16KernelCases,
  type KernelCase,
} from './kernel-cases.ts';
import { stepKernelCases } from './step-cases.ts';

interface Case extends KernelCase {
  /** Argument positions filled by float atomics (order of additions varies): compared with a looser bound. */
  atomic?: number[];
}

const { rand, ints, tied, permutation, distinctRows, gates, causalProbs } = seededInputs(12345);

const ACTS: ActKind[] = ['relu', 'relu2', 'gelu', 'silu'];

function cases(): Case[] {
  const c: Case[] = [];
  // memory and elementwise
  c.push({ kernel: 'fill', args: [rand(13)], s: { n: 11, value: -2.5 } });
  c.push({ kernel: 'fill', label: 'i32', args: [ints(9, 100)], s: { n: 9, value: 7 } });
  c.push({
    kernel: 'copyBlock',
    args: [rand(40), rand(50)],
    s: { rows: 3, cols: 5, dstLd: 7, srcLd: 11, dstOffset: 2, srcOffset: 3, accumulate: false },
  });
  c.push({
    kernel: 'copyBlock',
    label: 'accumulate',
    args: [rand(40), rand(50)],
    s: { rows: 3, cols: 5, dstLd: 7, srcLd: 11, dstOffset: 2, srcOffset: 3, accumulate: true },
  });
  c.push({
    kernel: 'copyBlock',
    label: 'i32',
    args: [ints(20, 9), ints(20, 9)],
    s: { rows: 1, cols: 17, dstLd: 17, srcLd: 17, dstOffset: 1, srcOffset: 2, accumulate: false },
  });
  c.push({ kernel: 'axpby', args: [rand(301), rand(301)], s: { n: 301, alpha: 0.75, beta: -1.5 } });
  c.push({
    kernel: 'axpby',
    label: 'beta 0 ignores NaN',
    args: [new Float32Array(5).fill(NaN), rand(5)],
    s: { n: 5, alpha: 2, beta: 0 },
  });
  c.push({ kernel: 'addBias', args: [rand(3 * 7), rand(7)], s: { rows: 3, cols: 7 } });
  c.push({ kernel: 'colSum', args: [rand(7), rand(9 * 7)], s: { rows: 9, cols: 7 } });
  c.push({ kernel: 'sumSquares', args: [rand(1), rand(777)], s: { n: 777, accumulate: true } });
  c.push({ kernel: 'sumSquares', label: 'overwrite', args: [rand(1), rand(33)], s: { n: 33, accumulate: false } });
  // matrix products
  for (const [M, N, K] of [
    [5, 7, 3],
    [33, 9, 70],
  ]) {
    for (const transA of [false, true])
      for (const transB of [false, true]) {
        c.push({
          kernel: 'matmul',
          label: `${M}x${N}x${K} tA=${transA} tB=${transB}`,
          args: [rand(M * N), rand(M * K), rand(K * N)],
          s: { M, N, K, transA, transB, accumulate: transA },
        });
      }
  }
  const offsets = new Int32Array([0, 2, 2, 7]);
  for (const transB of [false, true]) {
    c.push({
      kernel: 'matmulGrouped',
      label: `transB=${transB}`,
      args: [rand(7 * 5), rand(7 * 6), rand(3 * 5 * 6), offsets],
      s: { P: 7, N: 5, K: 6, G: 3, transB, accumulate: transB },
    });
  }
  c.push({
    kernel: 'matmulGroupedTN',
    args: [rand(3 * 5 * 6), rand(7 * 5), rand(7 * 6), offsets],
    s: { P: 7, N: 5, K: 6, G: 3 },
  });
  // Tiles of 64 sorted rows that straddle experts, an empty expert, and an expert of one row.
  const big = new Int32Array([0, 40, 40, 100, 101, 150]);
  for (const transB of [false, true]) {
    c.push({
      kernel: 'matmulGrouped',
      label: `P=150 G=5 transB=${transB}`,
      args: [rand(150 * 70), rand(150 * 33), rand(5 * 70 * 33), big],
      s: { P: 150, N: 70, K: 33, G: 5, transB, accumulate: !transB },
    });
  }
  c.push({
    kernel: 'matmulGroupedTN',
    label: 'P=150 G=5',
    args: [rand(5 * 70 * 33), rand(150 * 70), rand(150 * 33), big],
    s: { P: 150, N: 70, K: 33, G: 5 },
  });
  // activations and TopK
  for (const kind of ACTS) {
    c.push({ kernel: 'activation', label: kind, args: [rand(50), rand(50, -3, 3)], s: { n: 50, kind } });
    c.push({
      kernel: 'activationBackward',
      label: kind,
      args: [rand(50), rand(50), rand(50, -3, 3)],
      s: { n: 50, kind },
    });
  }
  c.push({ kernel: 'swiglu', args: [rand(29), rand(29, -3, 3), rand(29)], s: { n: 29 } });
  c.push({ kernel: 'swigluBackward', args: [rand(29), rand(29), rand(29), rand(29, -3, 3), rand(29)], s: { n: 29 } });
  c.push({ kernel: 'thresholdTopkMask', args: [ints(3 * 11, 2), rand(3 * 11)], s: { rows: 3, n: 11, k: 4 } });
  c.push({
    kernel: 'thresholdTopkMask',
    label: 'ties',
    args: [ints(4 * 9, 2), tied(4 * 9)],
    s: { rows: 4, n: 9, k: 3 },
  });
  c.push({ kernel: 'maskScale', args: [rand(21), rand(21), ints(21, 2)], s: { n: 21, alpha: 0.3 } });
  c.push({
    kernel: 'maskScale',
    label: 'in place',
    args: [rand(21), rand(21), ints(21, 2)],
    s: { n: 21, alpha: 0.3 },
    alias: [0, 1],
  });
  // softmax, top-k
  c.push({ kernel: 'softmaxRows', args: [rand(4 * 67), rand(4 * 67, -5, 5)], s: { rows: 4, n: 67 } });
  c.push({ kernel: 'softmaxBackward', args: [rand(4 * 67), gates(4, 67, 0.3), rand(4 * 67)], s: { rows: 4, n: 67 } });
  c.push({ kernel: 'topkRows', args: [ints(5 * 3, 9), rand(5 * 3), rand(5 * 9)], s: { rows: 5, n: 9, k: 3 } });
  c.push({
    kernel: 'topkRows',
    label: 'ties',
    args: [ints(5 * 4, 9), rand(5 * 4), tied(5 * 9)],
    s: { rows: 5, n: 9, k: 4 },
  });
  c.push({
    kernel: 'topkRowsBackward',
    args: [rand(5 * 9), rand(5 * 3), distinctRows(5, 3, 9)],
    s: { rows: 5, n: 9, k: 3 },
  });
  // normalisation
  c.push({
    kernel: 'rmsnorm',
    args: [rand(6 * 70), rand(6), rand(6 * 70), rand(70)],
    s: { rows: 6, d: 70, eps: 1e-6 },
  });
  c.push({
    kernel: 'rmsnormBackward',
    args: [rand(6 * 70), rand(70), rand(6 * 70), rand(6 * 70), rand(70), rand(6, 0.5, 2)],
    s: { rows: 6, d: 70 },
  });
  c.push({ kernel: 'groupStats', args: [rand(3), rand(3), rand(7 * 3 * 5)], s: { outer: 7, groups: 3, inner: 5 } });
  c.push({
    kernel: 'groupStats',
    label: 'inner 1, outer 130',
    args: [rand(2), rand(2), rand(130 * 2)],
    s: { outer: 130, groups: 2, inner: 1 },
  });
  c.push({
    kernel: 'batchnorm',
    args: [rand(9 * 5), rand(9 * 5), rand(5), rand(5, 0.5, 2), rand(5), rand(5)],
    s: { rows: 9, cols: 5, eps: 1e-5 },
  });
  for (const train of [true, false]) {
    c.push({
      kernel: 'batchnormBackward',
      label: `train=${train}`,
      args: [rand(9 * 5), rand(5), rand(5), rand(9 * 5), rand(9 * 5), rand(5), rand(5, 0.5, 2), rand(5)],
      s: { rows: 9, cols: 5, eps: 1e-5, train },
    });
  }
  c.push({
    kernel: 'runningStatsUpdate',
    args: [rand(3), rand(3, 0.5, 2), rand(3), rand(3, 0.5, 2)],
    s: { groups: 3, count: 35, momentum: 0.1 },
  });
  // Monet
  const T = 5,
    H = 3,
    E = 7,
    m = 3;
  const the = T * H * E,
    tem = T * E * m,
    thm = T * H * m;
  c.push({
    kernel: 'monetRoute',
    args: [rand(the), ints(the, 2), rand(the, -2, 2), rand(H, -0.2, 0.2), rand(H, 0.5, 2)],
    s: { T, H, E, sigma: 1.15, eps: 1e-5 },
  });
  c.push({ kernel: 'monetUnifLoss', args: [rand(1), gates(T * H, E, 0.3)], s: { T, H, E, eps: 1e-10, scale: 0.7 } });
  c.push({
    kernel: 'monetUnifBackward',
    args: [rand(the), gates(T * H, E, 0.3)],
    s: { T, H, E, eps: 1e-10, scale: 0.7 },
  });
  c.push({ kernel: 'monetAmbLoss', args: [rand(1), gates(T * H, E, 0.3)], s: { T, H, E, scale: 0.7 } });
  c.push({ kernel: 'monetAmbBackward', args: [rand(the), gates(T * H, E, 0.3)], s: { T, H, E, scale: 0.7 } });
  c.push({ kernel: 'headSum', args: [rand(T * E), rand(the)], s: { T, H, E } });
  c.push({ kernel: 'headBroadcastAdd', args: [rand(the), rand(T * E)], s: { T, H, E } });
  c.push({
    kernel: 'monetHdMix',
    args: [rand(tem), rand(thm), rand(tem), gates(T * H, E, 0.3), gates(T * H, E, 0.3)],
    s: { T, H, E, m },
  });
  c.push({
    kernel: 'monetHdMixBackward',
    args: [
      rand(tem),
      rand(the),
      rand(the),
      rand(tem),
      rand(tem),
      gates(T * H, E, 0.3),
      gates(T * H, E, 0.3),
      rand(thm),
    ],
    s: { T, H, E, m },
  });
  c.push({
    kernel: 'monetVdMix',
    args: [
      rand(tem),
      rand(tem),
      rand(tem),
      rand(tem),
      rand(thm),
      rand(thm),
      rand(tem),
      rand(tem),
      gates(T * H, E, 0.3),
      gates(T * H, E, 0.3),
      rand(T * E),
      rand(T * E),
    ],
    s: { T, H, E, m },
  });
  c.push({
    kernel: 'monetVdMixBackward',
    args: [
      rand(tem),
      rand(tem),
      rand(the),
      rand(the),
      rand(tem),
      rand(tem),
      rand(tem),
      rand(tem),
      rand(tem),
      rand(tem),
      gates(T * H, E, 0.3),
      gates(T * H, E, 0.3),
      rand(T * E),
      rand(T * E),
      rand(thm),
      rand(thm),
    ],
    s: { T, H, E, m },
  });
  // Rows longer than a workgroup (every thread strides over several entries).
  c.push({
    kernel: 'monetRoute',
    label: 'E=150 > 64 threads',
    args: [rand(2 * 2 * 150), ints(2 * 2 * 150, 2), rand(2 * 2 * 150, -2, 2), rand(2, -0.2, 0.2), rand(2, 0.5, 2)],
    s: { T: 2, H: 2, E: 150, sigma: 2.0, eps: 1e-5 },
  });
  c.push({
    kernel: 'thresholdTopkMask',
    label: 'n=300',
    args: [ints(2 * 300, 2), rand(2 * 300)],
    s: { rows: 2, n: 300, k: 37 },
  });
  c.push({
    kernel: 'topkRows',
    label: 'n=300',
    args: [ints(2 * 37, 9), rand(2 * 37), rand(2 * 300)],
    s: { rows: 2, n: 300, k: 37 },
  });
  c.push({
    kernel: 'crossEntropy',
    label: 'V=301',
    args: [rand(1), rand(2 * 3 * 301), rand(2 * 3 * 301, -3, 3), ints(2 * 3, 301)],
    s: { B: 2, S: 3, V: 301, scale: 0.25 },
  });
  c.push({
    kernel: 'peerRoute',
    label: 'n=100 keys, k=8',
    args: [ints(3 * 2 * 8, 100), rand(3 * 2 * 8), rand(3 * 2 * 8), rand(2 * 100 * 4)],
    s: { T: 3, H: 2, dk: 8, n: 100, k: 8 },
  });
  // PEER
  const pn = 6,
    pk = 3,
    dk = 4,
    N = pn * pn,
    d = 5,
    thk = T * H * pk;
  c.push({
    kernel: 'peerRoute',
    args: [ints(thk, N), rand(thk), rand(T * H * dk), rand(2 * pn * (dk / 2))],
    s: { T, H, dk, n: pn, k: pk },
  });
  c.push({
    kernel: 'peerRouteBackward',
    args: [
      rand(T * H * dk),
      rand(2 * pn * (dk / 2)),
      rand(thk),
      rand(T * H * dk),
      rand(2 * pn * (dk / 2)),
      ints(thk, N),
    ],
    s: { T, H, dk, n: pn, k: pk },
    atomic: [1],
  });
  for (const kind of ['relu', 'gelu'] as ActKind[]) {
    c.push({
      kernel: 'peerExperts',
      label: kind,
      args: [rand(T * d), rand(thk), rand(T * d), rand(N * d), rand(N * d), ints(thk, N), rand(thk)],
      s: { T, H, k: pk, d, kind },
    });
    c.push({
      kernel: 'peerExpertsBackward',
      label: kind,
      args: [
        rand(T * d),
        rand(N * d),
        rand(N * d),
        rand(thk),
        rand(T * d),
        rand(T * d),
        rand(N * d),
        rand(N * d),
        ints(thk, 8),
        rand(thk),
        rand(thk),
      ],
      s: { T, H, k: pk, d, kind },
      atomic: [1, 2],
    });
  }
  // SMoE
  const P = T * 2,
    Em = 4;
  c.push({ kernel: 'moeSort', args: [ints(P, P), ints(P, P), ints(Em + 1, 3), ints(P, Em)], s: { P, E: Em } });
  c.push({ kernel: 'moeDispatch', args: [rand(P * d), rand(T * d), permutation(P)], s: { P, k: 2, d } });
  c.push({ kernel: 'moeDispatchBackward', args: [rand(T * d), rand(P * d), permutation(P)], s: { T, k: 2, d } });
  c.push({ kernel: 'moeCombine', args: [rand(T * d), rand(P * d), rand(P), permutation(P)], s: { T, k: 2, d } });
  c.push({
    kernel: 'moeCombineBackward',
    args: [rand(P * d), rand(P), rand(T * d), rand(P * d), rand(P), permutation(P)],
    s: { T, k: 2, d },
  });
  c.push({
    kernel: 'smoeAux',
    args: [rand(1), rand(1), rand(T * Em), rand(T), rand(T * Em, -2, 2), distinctRows(T, 2, Em)],
    s: { T, E: Em, k: 2, scale: 0.5 },
  });
  c.push({
    kernel: 'smoeAuxBackward',
    args: [rand(T * Em), gates(T, Em, 0.3), rand(T), distinctRows(T, 2, Em)],
    s: { T, E: Em, k: 2, coefBalance: 0.01, coefZ: 0.001 },
  });
  // LM
  c.push({ kernel: 'gatherRows', args: [rand(7 * 5), rand(9 * 5), ints(7, 9)], s: { rows: 7, cols: 5 } });
  c.push({
    kernel: 'scatterAddRows',
    args: [rand(9 * 5), rand(7 * 5), ints(7, 4)],
    s: { rows: 7, cols: 5 },
    atomic: [0],
  });
  const rs = { B: 2, S: 5, heads: 3, hd: 6, theta: 10000 };
  c.push({ kernel: 'rope', args: [rand(2 * 5 * 3 * 6), rand(2 * 5 * 3 * 6)], s: rs });
  c.push({ kernel: 'ropeBackward', args: [rand(2 * 5 * 3 * 6), rand(2 * 5 * 3 * 6)], s: rs });
  const as = { B: 2, S: 5, nH: 4, nKV: 2, hd: 3 };
  const nq = 2 * 5 * 4 * 3,
    nk = 2 * 5 * 2 * 3,
    np = 2 * 4 * 5 * 5;
  c.push({ kernel: 'attention', args: [rand(nq), rand(np), rand(nq), rand(nk), rand(nk)], s: as });
  const probs = causalProbs(2 * 4 * 5, 5); // (B·nH·S, S)
  c.push({
    kernel: 'attentionBackward',
    args: [rand(nq), rand(nk), rand(nk), rand(nq), rand(nq), rand(nk), rand(nk), probs],
    s: as,
  });
  c.push({
    kernel: 'crossEntropy',
    args: [rand(1), rand(2 * 4 * 11), rand(2 * 4 * 11, -3, 3), ints(2 * 4, 11)],
    s: { B: 2, S: 4, V: 11, scale: 1 / 6 },
  });
  c.push({
    kernel: 'crossEntropyBackward',
    args: [rand(2 * 4 * 11), gates(8, 11, 0.3), ints(2 * 4, 11)],
    s: { B: 2, S: 4, V: 11, scale: 1 / 6 },
  });
  c.push(...stepKernelCases(rand, 37));
  c.push(...widenKernelCases(rand));
  c.push(...bf16KernelCases(rand));
  return c;
}

const all = cases();
const js = createJsDevice();
let gpuDev: WebGpuDevice | undefined;
async function gpuDevice(): Promise<WebGpuDevice> {
  gpuDev ??= new WebGpuDevice(await requireGpu());
  return gpuDev;
}

test('every kernel of the contract has at least one case here', () => {
  const covered = new Set(all.map((c) => c.kernel));
  assert.equal(
    KERNELS.filter((k) => !covered.has(k)),
    [],
  );
});

for (const k of all) {
  gpuTest(`${k.kernel}${k.label ? ` (${k.label})` : ''} matches the JS device`, async () => {
    const dev = await gpuDevice();
    const want = await runOn(js, k);
    const got = await runOn(dev, k);
    assertMatchesJs(want, got, (a) => (k.atomic?.includes(a) ? 1e-4 : 1e-5), 'webgpu');
  });
}

test.run();
