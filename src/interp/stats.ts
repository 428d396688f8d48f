// Small statistics the interpretability tools share: Shannon entropy of a count table, a fixed-size "top M by score"
// heap, quantiles, and the domain-selection rule of the Monet paper (§5.1).
//
// Sizes: U units of one layer, G labels (Brown genres or code languages), M positions kept per unit.

/** Shannon entropy in bits of the distribution counts / Σ counts (zero counts contribute nothing). 0 for no mass. */
export function entropyBits(counts: Iterable<number>): number {
  const c = Array.from(counts); // an iterator (Map.values()) can be walked only once
  let total = 0;
  for (const x of c) {
    if (x < 0 || !Number.isFinite(x)) throw new Error(`entropyBits: counts must be finite and ≥ 0, found ${x}`);
    total += x;
  }
  if (total === 0) return 0;
  let h = 0;
  for (const x of c) {
    if (x === 0) continue;
    const p = x / total;
    h -= p * Math.log2(p);
  }
  // −Σ p log p can come out as −0 or −1e-17 for a single outcome; entropy is never negative.
  return Math.max(h, 0);
}

/** Counts of each distinct value in `values` (insertion order of first occurrence). */
export function countValues<K>(values: Iterable<K>): Map<K, number> {
  const m = new Map<K, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

/** The `n` most frequent entries of a count map, most frequent first (ties: first seen first). */
export function topCounts<K>(counts: Map<K, number>, n: number): Array<[K, number]> {
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

/** A fixed scramble of a position (murmur3 finaliser): the tie-break order among equal scores. */
export function tieRank(pos: number): number {
  let h = pos >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The M largest (score, position) pairs seen so far, as a binary min-heap: the smallest kept pair sits at the root,
 * so a new pair is rejected with one comparison unless it beats it. Equal scores are common (a Monet gate of exactly
 * 1, a saturated ReLU); they are ordered by tieRank(position), a fixed scramble, so the kept set among ties is a
 * deterministic spread over the text instead of its first M positions (which would all sit in one window).
 */
export class TopHeap {
  // Storage grows (doubling, up to M) as pairs arrive: most units of a large model fire a handful of times, and a
  // full M-slot heap for each of a million composite experts would take gigabytes.
  private scores: Float64Array; // (≤ M) heap order, not sorted
  private pos: Int32Array;
  private rank: Uint32Array; // tieRank(pos)
  size = 0;

  constructor(readonly M: number) {
    if (!Number.isInteger(M) || M < 1) throw new Error(`TopHeap: expected a positive integer capacity, found ${M}`);
    const n = Math.min(M, 4);
    this.scores = new Float64Array(n);
    this.pos = new Int32Array(n);
    this.rank = new Uint32Array(n);
  }

  /** Room for one more pair (size < M). */
  private grow(): void {
    if (this.size < this.scores.length) return;
    const n = Math.min(this.M, 2 * this.scores.length);
    const scores = new Float64Array(n);
    const pos = new Int32Array(n);
    const rank = new Uint32Array(n);
    scores.set(this.scores);
    pos.set(this.pos);
    rank.set(this.rank);
    this.scores = scores;
    this.pos = pos;
    this.rank = rank;
  }

  /** Whether slot i holds a smaller pair than (score, rank). */
  private below(i: number, score: number, rank: number): boolean {
    return this.scores[i] < score || (this.scores[i] === score && this.rank[i] < rank);
  }

  private set(i: number, score: number, pos: number, rank: number): void {
    this.scores[i] = score;
    this.pos[i] = pos;
    this.rank[i] = rank;
  }

  push(score: number, pos: number): void {
    const rank = tieRank(pos);
    if (this.size < this.M) {
      this.grow();
      let i = this.size++;
      // sift up while the parent is larger
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (this.below(parent, score, rank)) break;
        this.set(i, this.scores[parent], this.pos[parent], this.rank[parent]);
        i = parent;
      }
      this.set(i, score, pos, rank);
      return;
    }
    if (!this.below(0, score, rank)) return;
    // replace the root and sift down
    let i = 0;
    const n = this.size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.below(r, this.scores[l], this.rank[l]) ? r : l;
      if (!this.below(c, score, rank)) break;
      this.set(i, this.scores[c], this.pos[c], this.rank[c]);
      i = c;
    }
    this.set(i, score, pos, rank);
  }

  /** The kept pairs, highest score first (ties: the same scrambled order the heap used). */
  sorted(): Array<{ score: number; pos: number }> {
    const out: Array<{ score: number; pos: number; rank: number }> = [];
    for (let i = 0; i < this.size; i++) out.push({ score: this.scores[i], pos: this.pos[i], rank: this.rank[i] });
    return out.sort((a, b) => b.score - a.score || b.rank - a.rank).map(({ score, pos }) => ({ score, pos }));
  }
}

/** q-quantile (0 ≤ q ≤ 1) of values by linear interpolation between order statistics; NaN for an empty list. */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const x = q * (s.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (s[hi] - s[lo]) * (x - lo);
}

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/**
 * Monet §5.1 domain selection, one label: the units whose mean score on label g is at least `factor` (2) times their
 * mean score on every other label — i.e. ≥ factor × the runner-up — and positive (a unit that never fires anywhere
 * is not specific to anything).
 *   meanScore (U, G) row-major: meanScore[u·G + g] = mean routing score of unit u over the positions of label g.
 */
export function labelSpecificUnits(meanScore: Float64Array, U: number, G: number, g: number, factor = 2): number[] {
  if (meanScore.length !== U * G)
    throw new Error(`labelSpecificUnits: expected ${U}·${G} = ${U * G} mean scores, found ${meanScore.length}`);
  if (g < 0 || g >= G) throw new Error(`labelSpecificUnits: label ${g} out of range [0, ${G})`);
  if (G < 2) throw new Error('labelSpecificUnits: needs at least two labels to compare');
  const out: number[] = [];
  for (let u = 0; u < U; u++) {
    const own = meanScore[u * G + g];
    if (!(own > 0)) continue;
    let other = 0;
    for (let h = 0; h < G; h++) if (h !== g && meanScore[u * G + h] > other) other = meanScore[u * G + h];
    if (own >= factor * other) out.push(u);
  }
  return out;
}

/**
 * Label lean of every unit: its mean score on its best label / its largest mean score on any other label (the
 * quantity the masking rule compares with `factor`), and that best label. Infinity when the unit scored on one
 * label only; 0 for a unit that never scored.
 *   meanScore (U, G) row-major, as for labelSpecificUnits.
 */
export function unitLeans(meanScore: Float64Array, U: number, G: number): { lean: Float64Array; label: Int32Array } {
  const lean = new Float64Array(U);
  const label = new Int32Array(U).fill(-1);
  for (let u = 0; u < U; u++) {
    let best = -1;
    let bestV = 0;
    let second = 0;
    for (let g = 0; g < G; g++) {
      const v = meanScore[u * G + g];
      if (v > bestV) {
        second = bestV;
        bestV = v;
        best = g;
      } else if (v > second) second = v;
    }
    if (best < 0) continue;
    label[u] = best;
    lean[u] = second > 0 ? bestV / second : Infinity;
  }
  return { lean, label };
}

/** A uniformly random permutation of `a` (Fisher–Yates with the project's seeded generator), as a new array. */
export function shuffled(a: Int32Array, rng: { int(n: number): number }): Int32Array {
  const out = a.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/** `count` distinct values drawn uniformly from `pool` (partial Fisher–Yates), ascending. */
export function sampleWithoutReplacement(pool: ArrayLike<number>, count: number, rng: { int(n: number): number }) {
  if (count > pool.length)
    throw new Error(`sampleWithoutReplacement: cannot draw ${count} distinct values from a pool of ${pool.length}`);
  const a = Array.from(pool);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(a.length - i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a.slice(0, count).sort((x, y) => x - y);
}
