// A small seeded random number generator whose whole state is four 32-bit words, so a training run can save it
// in its optimizer-state file and `--resume` continues the exact same stream of batches.
//
// xoshiro128** (Blackman & Vigna), seeded through splitmix32 so that nearby seeds give unrelated streams.
// Not cryptographic; fast, well distributed, and easy to read beside its description.

export type RngState = [number, number, number, number];

/** The largest seed: seeds are uint32 (the `--seed` flags accept 0 … SEED_MAX). */
export const SEED_MAX = 0xffffffff;

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private s: Uint32Array; // (4,) the generator state

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4);
    if (typeof seed === 'number') {
      if (!Number.isInteger(seed) || seed < 0 || seed > SEED_MAX) {
        throw new Error(`Rng: expected an integer seed in [0, 2^32), found ${seed}`);
      }
      const sm = splitmix32(seed);
      for (let i = 0; i < 4; i++) this.s[i] = sm();
    } else {
      if (
        !Array.isArray(seed) ||
        seed.length !== 4 ||
        seed.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)
      ) {
        throw new Error(`Rng: expected a state of four uint32 words, found ${JSON.stringify(seed)}`);
      }
      this.s.set(seed);
    }
    // The all-zero state is a fixed point of xoshiro; splitmix never produces it, a saved state might if corrupted.
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) throw new Error('Rng: the all-zero state is invalid');
  }

  /** A copy of the state, for saving. */
  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  /** Next uint32. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Rng.int: expected a positive integer bound, found ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller; one of the pair is discarded to keep the state a pure function of draws). */
  normal(): number {
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
