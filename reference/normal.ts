// The standard normal distribution: complementary error function and inverse CDF, float64.
//
// Why this file exists: Monet's router (docs/spec.md §1.3) selects experts whose batch-normalised logit exceeds
//   sigma = Phi^{-1}(1 - topk/E)
// (scipy's `norm.ppf` in the official code). Under the Gaussian assumption that BatchNorm makes true, that threshold
// keeps on average `topk` of the E experts per head. We compute sigma instead of hard-coding it, so that any
// (topk, E) works, and we want it to ~1e-12 so that routing decisions match PyTorch's exactly.
//
// Method:
//   1. erfc(x) to ≲ 1e-14 relative: a positive-term series for erf when x < 1.5 (no cancellation inside the
//      sum, and erfc ≥ 0.034 there so 1 − erf loses ≤ 1.5 digits), a continued fraction for erfc from x = 1.5 on
//      (no 1 − erf cancellation in the tail).
//   2. Acklam's rational approximation of Phi^{-1} (relative error ~1.2e-9) as a starting point, then Halley steps
//      on Q(z) = ½·erfc(z/√2) − q, the UPPER tail, which keeps full relative precision for small tail masses.
//      Each Halley step roughly triples the number of correct digits, so two steps reach float64 precision.

const SQRT2 = Math.SQRT2;
const SQRT_PI = Math.sqrt(Math.PI);
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/**
 * erf(x) for small |x| (used below 2) from erf(x) = 2/√π · e^{−x²} · Σ_{n≥0} 2ⁿ x^{2n+1} / (1·3·5···(2n+1)); all terms
 * positive.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x; // n = 0 term: x / 1
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return (2 / SQRT_PI) * Math.exp(-x2) * sum;
}

/**
 * erfc(x) for x ≥ 1.5 from the continued fraction
 *   erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
 * evaluated with the modified Lentz algorithm until a step changes the value by < 1e-16 relative.
 */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  // f = b0 + a1/(b1 + a2/(b2 + ...)) with b_n = x and a_n = n/2.
  let f = x;
  let C = x;
  let D = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    D = x + a * D;
    if (D === 0) D = tiny;
    C = x + a / C;
    if (C === 0) C = tiny;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / (SQRT_PI * f);
}

/**
 * Complementary error function erfc(x) = 1 − erf(x). Relative error ≲ 1e-14 over the whole real line (worst just
 * below x = 1.5, where 1 − erf cancels most; ~1e-15 in the continued-fraction range that sigma uses).
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  // Below 1.5 the series for erf is exact to rounding and 1 − erf loses at most ~1.5 digits (erfc(1.5) ≈ 0.034);
  // from 1.5 on the continued fraction converges (≈ 90 steps at 1.5, ≈ 60 at 2) with no cancellation. (A lower
  // switch point is slightly more accurate but makes the continued fraction, and so GELU, several times slower.)
  if (x < 1.5) return 1 - erfSeries(x);
  if (x > 27) return 0; // below the smallest subnormal
  return erfcContinuedFraction(x);
}

/** Error function erf(x), accurate to ~1e-16 absolute. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return -erf(-x);
  if (x < 2) return erfSeries(x);
  return 1 - erfc(x);
}

/** Standard normal density φ(z). */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / SQRT_2PI;
}

/** Standard normal CDF Φ(z) = ½·erfc(−z/√2) (accurate in both tails). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / SQRT2);
}

/** Upper tail Q(z) = 1 − Φ(z) = ½·erfc(z/√2). */
export function normalUpperTail(z: number): number {
  return 0.5 * erfc(z / SQRT2);
}

// Acklam's coefficients (P. J. Acklam, "An algorithm for computing the inverse normal cumulative distribution
// function"): a rational approximation on the central region and another in the tails.
const A = [
  -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1,
  2.506628277459239,
];
const B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const C = [
  -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
const P_LOW = 0.02425;

/** Acklam's starting value for Φ^{-1}(p), 0 < p < 1 (relative error ≤ 1.15e-9). */
function acklam(p: number): number {
  if (p < P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) /
      ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1)
    );
  }
  if (p > 1 - P_LOW) {
    const q = Math.sqrt(-2 * Math.log1p(-p));
    return (
      -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) /
      ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) /
    (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1)
  );
}

/**
 * The z ≥ 0 with Q(z) = q, for 0 < q ≤ ½ (inverse of the upper tail).
 * Halley's method on f(z) = Q(z) − q: f' = −φ(z), f'' = z·φ(z), so with u = (Q(z) − q)/φ(z)
 *   z ← z + u / (1 − z·u/2).
 */
export function normalUpperQuantile(q: number): number {
  if (!(q > 0 && q <= 0.5)) throw new Error(`normalUpperQuantile: expected 0 < q ≤ 0.5, found ${q}`);
  let z = -acklam(q); // Φ^{-1}(q) ≤ 0, so −Φ^{-1}(q) = Q^{-1}(q) ≥ 0
  for (let it = 0; it < 4; it++) {
    const u = (normalUpperTail(z) - q) / normalPdf(z);
    const step = u / (1 - (z * u) / 2);
    z += step;
    if (Math.abs(step) <= 1e-16 * Math.max(1, Math.abs(z))) break;
  }
  return z;
}

/**
 * Inverse standard normal CDF Φ^{-1}(p) (scipy.stats.norm.ppf), 0 < p < 1, accurate to ~1e-14 relative.
 * For p > ½ we invert the upper tail at q = 1 − p, which is exact in float64 (Sterbenz) for p ≥ ½.
 */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: expected 0 < p < 1, found ${p}`);
  if (p === 0.5) return 0;
  return p > 0.5 ? normalUpperQuantile(1 - p) : -normalUpperQuantile(p);
}

/**
 * Monet's router threshold sigma = Φ^{-1}(1 − topk/E) (docs/spec.md §1.3). Computed as in the official code, from the
 * float64 value p = 1 − topk/E. Requires 0 < topk < E.
 */
export function monetSigma(topk: number, experts: number): number {
  if (!(Number.isInteger(topk) && Number.isInteger(experts) && topk > 0 && topk < experts)) {
    throw new Error(
      `monetSigma: expected integers 0 < moe_topk < moe_experts, found moe_topk=${topk}, moe_experts=${experts}`,
    );
  }
  return normalQuantile(1 - topk / experts);
}
