// What the MonetLLM panel shows of a sequence's routing, without any DOM: per router group (layers sharing a router,
// "group g" as the paper's viewer names them) and token, how much weight each expert half gets, and the composite
// experts (i, j) the token is sent to.
//
// Sizes: T tokens, H expert heads, E experts per side (N = E² composite experts per layer; the released models have
// E = 512). g1, g2 (T, H, E) from Engine.monetRouting: router 1 weighs the bottom halves i, router 2 the top halves
// j, and composite expert (i, j) of token t gets g_ij = Σ_h g1[t,h,i]·g2[t,h,j]. Each head keeps only a few entries
// (about moe_topk of E) non-zero, so the composite weights are summed over those instead of an E × E grid.

import type { GroupRouting } from '../src/train/engine.ts';

/** G (T, E) = Σ_h g[t, h, :]: the weight each expert half gets from token t over all heads (one router). */
export function headSum(g: Float32Array, T: number, H: number, E: number): Float32Array {
  const out = new Float32Array(T * E); // (T, E)
  for (let t = 0; t < T; t++)
    for (let h = 0; h < H; h++) for (let e = 0; e < E; e++) out[t * E + e] += g[(t * H + h) * E + e];
  return out;
}

/** The n largest composite weights g_ij of token t (ties → lower id i·E + j, the package's tie rule). */
export function topComposite(r: GroupRouting, t: number, n: number): Array<{ i: number; j: number; weight: number }> {
  const { H, E, g1, g2 } = r;
  const sum = new Map<number, number>(); // id i·E + j → g_ij
  for (let h = 0; h < H; h++) {
    const o = (t * H + h) * E;
    const is: number[] = [];
    const js: number[] = [];
    for (let e = 0; e < E; e++) {
      if (g1[o + e] !== 0) is.push(e);
      if (g2[o + e] !== 0) js.push(e);
    }
    for (const i of is) for (const j of js) sum.set(i * E + j, (sum.get(i * E + j) ?? 0) + g1[o + i] * g2[o + j]);
  }
  return [...sum]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, n)
    .map(([id, weight]) => ({ i: Math.floor(id / E), j: id % E, weight }));
}

/** Per head h, the expert halves token t is routed to: router 1's i and router 2's j with their weights. */
export function headChoices(
  r: GroupRouting,
  t: number,
): Array<{ h: number; i: Array<[number, number]>; j: Array<[number, number]> }> {
  const { H, E, g1, g2 } = r;
  return Array.from({ length: H }, (_, h) => {
    const o = (t * H + h) * E;
    const pick = (g: Float32Array) => {
      const out: Array<[number, number]> = [];
      for (let e = 0; e < E; e++) if (g[o + e] !== 0) out.push([e, g[o + e]]);
      return out.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    };
    return { h, i: pick(g1), j: pick(g2) };
  });
}
