// A small seeded, deterministic pseudo-random generator for tests, the demo and the fixture generator.
//
// Why not Math.random: fixtures and finite-difference tests must be reproducible from a seed, on every machine.
// Generator: mulberry32 (32-bit state, one multiply-xorshift round per draw; period 2^32). It is tiny, fast and
// statistically good enough for drawing weights and inputs; it is NOT cryptographic and does not try to be.
// Uniform doubles use two 32-bit draws (53 random bits); normal draws use the Box–Muller transform.

export class Rng {
  private state: number; // uint32
  private spare: number | null = null; // Box–Muller produces two normals per pair of uniforms; keep the second

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`Rng: expected an integer seed, found ${seed}`);
    this.state = seed >>> 0;
  }

  /** Next uint32. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992; // (hi·2^26 + lo) / 2^53
  }

  /** Integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Rng.int: expected a positive integer bound, found ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal N(0, 1) by Box–Muller. */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.uniform(); // log(0) would be -Infinity
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A new Float64Array of n draws from N(0, std²). */
  normals(n: number, std = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = std * this.normal();
    return out;
  }

  /** A new Int32Array of n integers uniform in [0, bound). */
  ints(n: number, bound: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(bound);
    return out;
  }
}
