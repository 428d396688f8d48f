// The effect of each unit on each label's loss, to first order, and the selection rule built on it.
//
// Removing unit u of a layer changes that layer's output by −c_u(t) at every token t (c_u(t) its exact contribution,
// views.ts: g_ij·E_ij(u_t) for a Monet composite expert, h[t,n]·down[:,n] for a neuron, …). To first order the mean
// loss L of a batch then changes by
//   ΔL_u ≈ −Σ_t ⟨∂L/∂out_t, c_u(t)⟩                     (summed over every layer of u's group)
// where ∂L/∂out is the gradient of the loss at the layer's output (reference/lm.ts lmBackward's hooks; it carries
// the effect of the change through every later layer). This is the attribution "routing coefficient × ∂L/∂coefficient"
// for a Monet expert: c = g_ij·E_ij and ∂L/∂g_ij = ⟨∂L/∂out, E_ij⟩. One forward and one backward per batch give it
// for every unit at once; the batches of one label give its mean, so effect[u, g] ≈ ΔL on label g's mean loss when u
// alone is removed. It is an estimate (the loss is not linear in a removal); the masking experiment (mask.ts)
// measures the real ΔL of the selected set on other windows.
//
// The effect selection rule: for label g, the K units of each group with the largest specific effect
//   s[u, g] = effect[u, g] − mean over the other labels h of effect[u, h],
// among those with s > 0 and effect[u, g] > 0 and, optionally, a routing lean towards g (their mean score on g at
// least `factor` × their mean score on every other label, stats.ts labelSpecificUnits): units whose removal should
// hurt g more than the rest. The routing rule alone (the paper's, factor 2) picks units used mostly on g, which may
// carry little of g's loss; the effect alone picks busy units whose removal, being a large change, hurts every label
// (the first-order estimate does not see that). The mask module uses both, with a milder lean (1.25 by default).
//
// Runs on the float64 reference (the WASM forward has no backward), with the aux losses left out: only the next-token
// loss counts. Sizes: G labels, U units of a group, T = B·S tokens of a batch, d model dim.

import type { Params } from '../../reference/common.ts';
import { lmBackward, lmForward, type LmConfig } from '../../reference/lm.ts';
import { windowsOfLabel, type AnalysisText } from './data.ts';
import { lmHooks, windowsPerForward, type InterpModel } from './model.ts';
import type { UnitView } from './views.ts';

export interface UnitEffects {
  /** Per unit group, (U, G) row-major: effect[u·G + g] ≈ ΔL (nats/token) on label g's mean loss when u is removed. */
  effect: Float64Array[];
  labels: string[];
  windows: number;
}

/** The LM config with every aux-loss coefficient 0: the backward then differentiates the next-token loss only. */
export function withoutAux(lm: LmConfig): LmConfig {
  const f = lm.ffn;
  if (f.kind === 'smoe') return { ...lm, ffn: { ...f, aux: { balance: 0, z: 0 } } };
  if (f.kind === 'monet') return { ...lm, ffn: { ...f, monet: { ...f.monet, aux: { unif: 0, amb: 0 } } } };
  return lm;
}

/** eff (U) −= scale · Σ_t ⟨grad_t, c_u(t)⟩ for every unit u with a non-zero score at a token of the view. */
function accumulate(view: UnitView, grad: Float64Array, eff: Float64Array, scale: number): void {
  const d = view.d;
  const c = new Float64Array(d); // (d) one unit's contribution at one token
  view.visitScores((t, u) => {
    c.fill(0);
    view.addContribution(c, t, u);
    let dot = 0;
    for (let o = 0; o < d; o++) dot += grad[t * d + o] * c[o];
    eff[u] -= scale * dot;
  });
}

/**
 * First-order effect of removing each unit on each label's mean next-token loss, over the windows of `text` (every
 * forward batch holds windows of one label). Needs the float64 weights (a run folder written by monet train).
 */
export function unitEffects(model: InterpModel, text: AnalysisText, log?: (line: string) => void): UnitEffects {
  if (Object.keys(model.params).length === 0)
    throw new Error(
      'inspect: the effect selection needs the float64 weights of a run folder (monet train); this model keeps ' +
        'its weights on the WASM device only',
    );
  const G = text.labels.length;
  const lm = withoutAux(model.lm);
  const effect = model.groups.map((g) => new Float64Array(g.count * G)); // (groups) (U, G)
  const grads: Params = {};
  for (const [k, v] of Object.entries(model.params)) grads[k] = new Float64Array(v.length); // never read
  const S = text.S;
  const per = windowsPerForward(model, S);
  for (let g = 0; g < G; g++) {
    const own = windowsOfLabel(text, g);
    const W = own.windows;
    const eff = model.groups.map((grp) => new Float64Array(grp.count)); // (groups) (U) this label
    log?.(`first-order unit effects on '${text.labels[g]}': ${W} windows, reference forward + backward …`);
    for (let w0 = 0; w0 < W; w0 += per) {
      const B = Math.min(per, W - w0);
      const views = new Map<string, UnitView>(); // `${layer}:${site}` → the view the forward built there
      const hooks = lmHooks(model, {
        atSite(view) {
          views.set(`${view.layer}:${view.group.site}`, view);
        },
      });
      const tokens = own.tokens.subarray(w0 * S, (w0 + B) * S);
      const fwd = lmForward(lm, model.params, tokens, B, S, model.state, hooks);
      const scale = B / W; // the batch's share of the label's positions (all windows have S tokens)
      const at = (layer: number, site: string, grad: Float64Array) => {
        const view = views.get(`${layer}:${site}`);
        if (view) accumulate(view, grad, eff[view.group.group], scale);
      };
      lmBackward(lm, model.params, fwd, grads, 1, {
        ffnOutGrad: (layer, grad) => at(layer, 'ffn', grad),
        postOutGrad: (layer, grad) => at(layer, 'hidden', grad),
      });
    }
    for (const [gi, e] of eff.entries()) for (let u = 0; u < e.length; u++) effect[gi][u * G + g] = e[u];
  }
  return { effect, labels: text.labels, windows: text.windows };
}

/**
 * The effect rule, one label and one group: the (up to) K units with the largest effect[u, g] − mean over the
 * other labels of effect[u, h], among those where that difference and effect[u, g] are both positive (and that are
 * in `allowed`, when given); ascending ids. Ties: the lower id first.
 *   effect (U, G) row-major, as UnitEffects.effect.
 */
export function effectSpecificUnits(
  effect: Float64Array,
  U: number,
  G: number,
  g: number,
  K: number,
  allowed?: ReadonlySet<number>,
): number[] {
  if (effect.length !== U * G)
    throw new Error(`effectSpecificUnits: expected ${U}·${G} = ${U * G} effects, found ${effect.length}`);
  if (g < 0 || g >= G) throw new Error(`effectSpecificUnits: label ${g} out of range [0, ${G})`);
  if (G < 2) throw new Error('effectSpecificUnits: needs at least two labels to compare');
  if (!Number.isInteger(K) || K < 0) throw new Error(`effectSpecificUnits: expected K ≥ 0, found ${K}`);
  const cand: Array<[number, number]> = []; // (unit, specific effect)
  for (let u = 0; u < U; u++) {
    if (allowed && !allowed.has(u)) continue;
    const own = effect[u * G + g];
    let others = 0;
    for (let h = 0; h < G; h++) if (h !== g) others += effect[u * G + h];
    const s = own - others / (G - 1);
    if (own > 0 && s > 0) cand.push([u, s]);
  }
  cand.sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  return cand
    .slice(0, K)
    .map(([u]) => u)
    .sort((a, b) => a - b);
}
