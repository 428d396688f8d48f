// Matmul kernels on WebGPU against plain float64 JS, at many shapes (odd sizes, tile edges, every transpose
// combination, accumulate, batched with offsets, both variants). Bound per element: the float32 rounding of a
// K-term dot product, |err| ≤ 2·K·2⁻²⁴·Σ_k |a_k·b_k| (+ the same for the beta term), a standard a-priori bound.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuTest, requireGpu } from './webgpu-setup.ts';
import { matmul, SMALL_M, type MatmulShape, type MatmulVariant } from '../src/backend/webgpu/matmul.ts';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** Plain reference: returns C and the per-element error budget. */
function reference(A: Float32Array, B: Float32Array, C0: Float32Array, s: Required<MatmulShape>) {
  const C = new Float64Array(C0.length);
  C.set(C0);
  const bound = new Float64Array(C0.length);
  const u = 2 ** -24;
  for (let b = 0; b < s.batch; b++) {
    for (let m = 0; m < s.M; m++) {
      for (let n = 0; n < s.N; n++) {
        let acc = 0,
          mag = 0;
        for (let k = 0; k < s.K; k++) {
          const a = s.transA ? A[s.offA + b * s.strideA + k * s.M + m] : A[s.offA + b * s.strideA + m * s.K + k];
          const w = s.transB ? B[s.offB + b * s.strideB + n * s.K + k] : B[s.offB + b * s.strideB + k * s.N + n];
          acc += a * w;
          mag += Math.abs(a * w);
        }
        const at = s.offC + b * s.strideC + m * s.N + n;
        const old = C0[at];
        C[at] = s.alpha * acc + s.beta * old;
        bound[at] = 2 * (s.K + 2) * u * (Math.abs(s.alpha) * mag + Math.abs(s.beta * old)) + 1e-30;
      }
    }
  }
  return { C, bound };
}

async function check(shape: MatmulShape, seed: number, variant: MatmulVariant = 'auto') {
  const gpu = await requireGpu();
  const s: Required<MatmulShape> = {
    transA: false,
    transB: false,
    alpha: 1,
    beta: 0,
    batch: 1,
    offA: 0,
    offB: 0,
    offC: 0,
    strideA: shape.M * shape.K,
    strideB: shape.K * shape.N,
    strideC: shape.M * shape.N,
    ...shape,
  };
  const r = rng(seed);
  const lenA = s.offA + (s.batch - 1) * s.strideA + s.M * s.K + 3;
  const lenB = s.offB + (s.batch - 1) * s.strideB + s.K * s.N + 5;
  const lenC = s.offC + (s.batch - 1) * s.strideC + s.M * s.N + 7;
  const A = Float32Array.from({ length: lenA }, r);
  const B = Float32Array.from({ length: lenB }, r);
  const C0 = Float32Array.from({ length: lenC }, r);
  const gA = gpu.upload(A, 'A'),
    gB = gpu.upload(B, 'B'),
    gC = gpu.upload(C0, 'C');
  matmul(gpu, gC, gA, gB, s, variant);
  const got = await gpu.read(gC);
  const { C, bound } = reference(A, B, C0, s);
  for (let i = 0; i < lenC; i++) {
    if (!(Math.abs(got[i] - C[i]) <= bound[i])) {
      assert.unreachable(
        `matmul ${variant} ${JSON.stringify(shape)}: element ${i} got ${got[i]}, expected ${C[i]} (bound ${bound[i]})`,
      );
    }
  }
  for (const g of [gA, gB, gC]) gpu.free(g);
}

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 33, 9],
  [64, 64, 16],
  [65, 63, 17],
  [130, 70, 100],
  [16, 96, 200],
  [1, 257, 31],
  [SMALL_M + 1, 5, 64],
  [200, 3, 50],
  [8, 128, 1000],
  [128, 64, 3],
];

for (const [M, N, K] of shapes) {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      gpuTest(`matmul M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`, async () => {
        await check({ M, N, K, transA, transB }, M * 1000 + N * 10 + K + (transA ? 7 : 0) + (transB ? 13 : 0));
      });
    }
  }
}

// Every variant at every shape (the automatic choice above only reaches matmul_128 for big products).
for (const variant of ['rows', 'tile64', 'tile128', 'tile128k16'] as const) {
  gpuTest(`matmul variant ${variant} at odd shapes, all transposes, accumulate, batched`, async () => {
    let seed = 100;
    for (const [M, N, K] of [
      [1, 1, 1],
      [7, 9, 5],
      [65, 130, 17],
      [128, 256, 16],
      [129, 127, 9],
      [20, 300, 64],
    ]) {
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          await check({ M, N, K, transA, transB, beta: transA ? 1 : 0 }, seed++, variant);
        }
    }
    await check(
      { M: 130, N: 12, K: 9, batch: 3, offA: 5, offB: 2, offC: 11, strideA: 1200, strideB: 120, strideC: 1600 },
      seed++,
      variant,
    );
  });
}

gpuTest('matmul accumulates with beta = 1 and scales with alpha', async () => {
  await check({ M: 37, N: 41, K: 29, beta: 1, alpha: -0.5 }, 5);
  await check({ M: 3, N: 41, K: 29, beta: 1, alpha: 2, transB: true }, 6);
});

gpuTest('matmul batched with offsets and strides (both variants)', async () => {
  await check(
    { M: 20, N: 12, K: 9, batch: 3, offA: 5, offB: 2, offC: 11, strideA: 200, strideB: 120, strideC: 250 },
    7,
  );
  await check(
    { M: 2, N: 12, K: 9, batch: 4, offA: 1, offB: 3, offC: 2, strideA: 20, strideB: 110, strideC: 30, transA: true },
    8,
  );
});

gpuTest('matmul K = 0 writes beta · C', async () => {
  await check({ M: 5, N: 6, K: 0, beta: 1 }, 9);
  await check({ M: 70, N: 6, K: 0 }, 10);
});

gpuTest('matmul rejects a buffer that is too small, naming it', async () => {
  const gpu = await requireGpu();
  const a = gpu.alloc(10, 'small-A'),
    b = gpu.alloc(100, 'B'),
    c = gpu.alloc(100, 'C');
  assert.throws(() => matmul(gpu, c, a, b, { M: 4, N: 4, K: 4 }), /small-A/);
});

test.run();
