// What the kernel-contract tests share (test/wasm-kernels.test.ts, test/webgpu-kernels.test.ts; not a test file
// itself): the shape of a case, a seeded generator of inputs, running one case on a device, and comparing every
// tensor a device left behind with what the plain-JS device left.

import * as assert from 'uvu/assert';
import type { Device } from '../src/backend/device.ts';
import type { DTensor, KernelName } from '../src/backend/kernels.ts';

export type Init = Float32Array | Int32Array;

/** One kernel call: its arguments in contract order (uploaded fresh on each device) and its size/settings object. */
export interface KernelCase {
  kernel: KernelName;
  label?: string;
  args: Init[];
  s: Record<string, unknown>;
  /** Argument positions that are the same tensor (aliasing), e.g. maskScale's in-place form. */
  alias?: [number, number];
}

/**
 * Input generators drawing from one linear congruential sequence that starts at `seed`: the same seed and the same
 * calls give the same inputs, so a failing case can be rerun alone.
 */
export function seededInputs(seed: number) {
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const rand = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
  const ints = (n: number, max: number) => Int32Array.from({ length: n }, () => Math.floor(rnd() * max));
  /** Values on a coarse grid, so rows hold ties for the tie rules. */
  const tied = (n: number) => Float32Array.from({ length: n }, () => Math.round(rnd() * 6) / 2 - 1.5);
  const permutation = (n: number) => Int32Array.from(Array.from({ length: n }, (_, i) => i).sort(() => rnd() - 0.5));
  /** Rows of k distinct indices below n. */
  const distinctRows = (rows: number, k: number, n: number) => {
    const out = new Int32Array(rows * k);
    for (let r = 0; r < rows; r++) {
      const perm = Array.from({ length: n }, (_, i) => i).sort(() => rnd() - 0.5);
      for (let j = 0; j < k; j++) out[r * k + j] = perm[j];
    }
    return out;
  };
  /**
   * Softmax-like rows (positive, each row sums to 1) in which about `zeroShare` of the entries past the first are
   * exactly 0, as Monet's masked gates are.
   */
  const gates = (rows: number, n: number, zeroShare: number) => {
    const g = new Float32Array(rows * n);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += g[r * n + i] = rnd() < zeroShare && i > 0 ? 0 : rnd() + 0.05;
      for (let i = 0; i < n; i++) g[r * n + i] /= s;
    }
    return g;
  };
  /** Causal attention probabilities as attention saves them: `rows` rows of S, row r (query r mod S) over keys ≤ it. */
  const causalProbs = (rows: number, S: number) => {
    const probs = new Float32Array(rows * S);
    for (let r = 0; r < rows; r++) {
      const i = r % S;
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += probs[r * S + j] = rnd() + 0.1;
      for (let j = 0; j <= i; j++) probs[r * S + j] /= sum;
    }
    return probs;
  };
  return { rnd, rand, ints, tied, permutation, distinctRows, gates, causalProbs };
}

/** Uploads the case's arguments to `dev`, runs the kernel, and reads EVERY argument back (outputs and inputs). */
export async function runOn(dev: Device, k: KernelCase): Promise<Init[]> {
  const ts: DTensor[] = [];
  k.args.forEach((a, i) => {
    if (k.alias && i === k.alias[1]) ts.push(ts[k.alias[0]]);
    else ts.push(a instanceof Float32Array ? dev.upload(a) : dev.upload(a));
  });
  (dev.kernels[k.kernel] as (...a: unknown[]) => void)(...ts, k.s);
  const out: Init[] = [];
  for (const t of ts)
    out.push(t.dtype === 'f32' ? await dev.read(t as DTensor<'f32'>) : await dev.read(t as DTensor<'i32'>));
  for (const t of new Set(ts)) dev.free(t);
  return out;
}

/**
 * Fails unless every argument `got` matches `want` (the JS device's): integers exactly, floats within
 * `atol(argument) + 2e-4·|want|` (NaN only where want is NaN). `where` prefixes the message, `name` is the device's.
 */
export function assertMatchesJs(
  want: Init[],
  got: Init[],
  atol: (arg: number) => number,
  name: string,
  where = '',
): void {
  for (let a = 0; a < want.length; a++) {
    const w = want[a],
      g = got[a];
    for (let i = 0; i < w.length; i++) {
      if (w instanceof Int32Array) {
        if (g[i] !== w[i])
          assert.unreachable(`${where}argument ${a} [${i}]: ${name} ${g[i]}, js ${w[i]} (integers compare exactly)`);
      } else {
        const tol = atol(a) + 2e-4 * Math.abs(w[i]);
        const ok = Number.isNaN(w[i]) ? Number.isNaN(g[i]) : Math.abs(g[i] - w[i]) <= tol;
        if (!ok)
          assert.unreachable(
            `${where}argument ${a} [${i}]: ${name} ${g[i]}, js ${w[i]} (|diff| ` +
              `${Math.abs(g[i] - w[i]).toExponential(2)} > ${tol.toExponential(2)})`,
          );
      }
    }
  }
}

/** widenBf16 cases: bfloat16 pairs packed in int32 (`rand` floats, a zero, a −0, a subnormal), odd and even n. */
export function widenKernelCases(rand: (n: number, lo?: number, hi?: number) => Float32Array): KernelCase[] {
  return [37, 64].map((n) => {
    const x = rand(n, -3, 3);
    x[0] = 0;
    x[1] = -0;
    x[2] = 1e-39;
    const bits = new Uint16Array(n + (n % 2)); // the packed tensor has ⌈n/2⌉ words
    const u = new Uint32Array(x.buffer);
    for (let i = 0; i < n; i++) bits[i] = u[i] >>> 16; // truncation: any 16 bits are a valid bfloat16
    return { kernel: 'widenBf16', label: `n = ${n}`, args: [rand(n), new Int32Array(bits.buffer)], s: { n } };
  });
}

/** `n` bfloat16 values (upper halves of `rand` floats) packed two per int32, as the 16-bit kernels read them. */
export function packedBf16(rand: (n: number, lo?: number, hi?: number) => Float32Array, n: number): Int32Array {
  const x = rand(n, -2, 2);
  const bits = new Uint16Array(n + (n % 2));
  const u = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) bits[i] = u[i] >>> 16;
  return new Int32Array(bits.buffer);
}

/**
 * matmulBf16 and gatherRowsBf16 cases (K: the reduction length, for the tolerance): one token (the WASM gemv: K
 * not a multiple of 8, N not of 4), a few and many tokens (the blocked gemm: K beyond its 256-deep block, M beyond
 * its 96-row block, N below and above M; WebGPU's row and tile variants), odd K (rows starting mid-word), accumulate.
 */
export function bf16KernelCases(
  rand: (n: number, lo?: number, hi?: number) => Float32Array,
): Array<KernelCase & { K: number }> {
  const shapes = [
    { M: 1, N: 13, K: 37 },
    { M: 1, N: 21, K: 300 },
    { M: 1, N: 6, K: 7 },
    { M: 3, N: 40, K: 263 },
    { M: 20, N: 9, K: 48 },
    { M: 100, N: 11, K: 17 },
  ];
  const c: Array<KernelCase & { K: number }> = [];
  for (const { M, N, K } of shapes)
    for (const accumulate of [false, true])
      c.push({
        kernel: 'matmulBf16',
        label: `M=${M} N=${N} K=${K} acc=${accumulate}`,
        args: [rand(M * N), rand(M * K), packedBf16(rand, N * K)],
        s: { M, N, K, accumulate },
        K,
      });
  for (const cols of [9, 24])
    c.push({
      kernel: 'gatherRowsBf16',
      label: `cols = ${cols}`,
      args: [rand(5 * cols), packedBf16(rand, 7 * cols), Int32Array.of(3, 0, 6, 3, 1)],
      s: { rows: 5, cols },
      K: 1,
    });
  return c;
}
