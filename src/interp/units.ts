// What the interpretability tools call a "unit", and how units are grouped: from a model config alone, no weights.
//
// A unit group is one id space of units that act together:
//   monet   the composite experts (i, j) of ONE ROUTER. A router routes the first layer of its group and the next
//           moe_groups − 1 layers reuse its (g1, g2) verbatim, so expert (i, j) has the same score in every layer
//           of the group (each layer has its own expert weights). The paper and its viewer name experts this way,
//           "group g, expert (i, j)"; listing the layers separately would show the same scores moe_groups times.
//           Masking (i, j) of a group removes its contribution from every layer of the group.
//   dense   the hidden neurons of one layer's MLP (the input of down_proj)
//   topk    the hidden neurons of one TopK MLP layer (topk_placement 'ffn'), after TopK
//   hidden  the residual-stream dimensions after one TopK layer (topk_placement 'hidden'): the TopK map acts on the
//           block's output, so the model's hidden state itself is the sparse code
//   smoe    the experts of one layer
//   peer    the experts of one PEER layer
// Every kind but monet has one group per layer. A unit "fires" when its score exceeds FIRE_THRESHOLD[kind].
//
// Issue-facing API (also for other model sources, e.g. released checkpoints): unitGroups(config) lists the groups
// with the layers they cover; groupName / unitName / parseUnit turn ids into text and back.

import type { ModelConfig } from '../train/presets.ts';

export type UnitKind = 'dense' | 'topk' | 'hidden' | 'smoe' | 'peer' | 'monet';

/** Score above which a unit counts as firing. Monet: the official README's g_ij > 1e-2; others: any positive value. */
export const FIRE_THRESHOLD: Record<UnitKind, number> = {
  dense: 0,
  topk: 0,
  hidden: 0,
  smoe: 0,
  peer: 0,
  monet: 1e-2,
};

/** Where in a layer the units of a group sit. */
export type UnitSite = 'ffn' | 'hidden';

export interface UnitGroup {
  /** Index in the model's list of groups (unitGroups order: by first layer, then site). */
  group: number;
  kind: UnitKind;
  count: number;
  /** The layers whose output the units act on, ascending. One layer except for shared Monet routers. */
  layers: number[];
  /** 'ffn': the units are part of the feed-forward output; 'hidden': they are the residual stream after TopK. */
  site: UnitSite;
  /** Monet only: experts per side E, so unit id u is the composite (⌊u/E⌋, u mod E). */
  sideExperts?: number;
  /** Monet only: index of the router (0, 1, …), the paper's "group". */
  router?: number;
  /**
   * Monet only: layers per router (the config's moe_groups). Above 1 the group is named as a router group even when
   * it covers one layer (the trailing group of a model whose layer count is not a multiple of moe_groups).
   */
  routerLayers?: number;
}

/** Kinds whose units are neurons (steering adds δ to one of them). */
export const NEURON_KINDS: ReadonlySet<UnitKind> = new Set(['dense', 'topk', 'hidden']);

export const isNeuronKind = (k: UnitKind) => NEURON_KINDS.has(k);

/** The unit groups of a model, from its config. */
export function unitGroups(config: ModelConfig): UnitGroup[] {
  const out: UnitGroup[] = [];
  const L = config.num_hidden_layers;
  const add = (g: Omit<UnitGroup, 'group'>) => out.push({ group: out.length, ...g });
  if (config.ffn === 'monet') {
    const G = config.moe_groups ?? 1;
    const E = config.moe_experts!;
    for (let first = 0, r = 0; first < L; first += G, r++) {
      const layers: number[] = [];
      for (let l = first; l < Math.min(L, first + G); l++) layers.push(l);
      add({ kind: 'monet', count: E * E, layers, site: 'ffn', sideExperts: E, router: r, routerLayers: G });
    }
    return out;
  }
  for (let l = 0; l < L; l++) {
    switch (config.ffn) {
      case 'dense':
        add({ kind: 'dense', count: config.intermediate_size!, layers: [l], site: 'ffn' });
        break;
      case 'topk': {
        const nLast = config.n_last_non_topk ?? 2;
        const topk = l < L - nLast;
        if (topk && config.topk_placement === 'hidden')
          add({ kind: 'hidden', count: config.hidden_size, layers: [l], site: 'hidden' });
        else add({ kind: topk ? 'topk' : 'dense', count: config.intermediate_size!, layers: [l], site: 'ffn' });
        break;
      }
      case 'smoe':
        add({ kind: 'smoe', count: config.num_experts!, layers: [l], site: 'ffn' });
        break;
      case 'peer':
        if (config.peer_layers!.includes(l))
          add({ kind: 'peer', count: config.num_experts!, layers: [l], site: 'ffn' });
        else add({ kind: 'dense', count: config.intermediate_size!, layers: [l], site: 'ffn' });
        break;
    }
  }
  return out;
}

/**
 * Whether g is the units of a Monet router that routes several layers (moe_groups > 1): such a group is named by
 * its router, also when it is the trailing group and covers one layer only.
 */
export function isRouterGroup(g: UnitGroup): boolean {
  return g.kind === 'monet' && (g.layers.length > 1 || (g.routerLayers ?? 1) > 1);
}

/** The layers a group covers: 'layer 2', 'layers 2–3'. */
export function groupLayers(g: UnitGroup): string {
  const n = g.layers.length;
  return n > 1 ? `layers ${g.layers[0]}–${g.layers[n - 1]}` : `layer ${g.layers[0]}`;
}

/**
 * 'layer 3', or for a Monet router group 'group 1 (layers 2–3)' — and 'group 1 (layer 2)' for the trailing group of
 * a model whose layer count is not a multiple of moe_groups.
 */
export function groupName(g: UnitGroup): string {
  if (isRouterGroup(g)) return `group ${g.router} (${groupLayers(g)})`;
  return `layer ${g.layers[0]}${g.site === 'hidden' ? ' hidden' : ''}`;
}

/** A short label for file names and ids: 'g1' for a Monet router group, 'l3' for a layer, 'l3h' for hidden units. */
export function groupSlug(g: UnitGroup): string {
  if (isRouterGroup(g)) return `g${g.router}`;
  return `l${g.layers[0]}${g.site === 'hidden' ? 'h' : ''}`;
}

/** What one unit of a group is called in prose: 'composite expert', 'neuron', 'expert', 'dimension'. */
export function unitNoun(kind: UnitKind): string {
  switch (kind) {
    case 'monet':
      return 'composite expert';
    case 'smoe':
    case 'peer':
      return 'expert';
    case 'hidden':
      return 'dimension';
    default:
      return 'neuron';
  }
}

/** The group that holds the units of layer `layer` (for hidden-placement TopK layers: the hidden dimensions). */
export function groupOfLayer(groups: UnitGroup[], layer: number): UnitGroup {
  const g = groups.find((x) => x.layers.includes(layer));
  if (!g) {
    const L = Math.max(...groups.flatMap((x) => x.layers)) + 1;
    throw new Error(`inspect: layer ${layer} out of range; the model has ${L} layers (0 … ${L - 1})`);
  }
  return g;
}

/** A readable name of unit u: 'n17', 'e3', 'd5' (hidden dimension), '(4,19)' for Monet composite (i, j). */
export function unitName(g: UnitGroup, u: number): string {
  switch (g.kind) {
    case 'monet':
      return `(${Math.floor(u / g.sideExperts!)},${u % g.sideExperts!})`;
    case 'smoe':
    case 'peer':
      return `e${u}`;
    case 'hidden':
      return `d${u}`;
    default:
      return `n${u}`;
  }
}

/** Parse a unit given on the command line: '17', 'n17', 'e3', 'd5', or 'i,j' / '(i,j)' for Monet. */
export function parseUnit(g: UnitGroup, text: string): number {
  const t = text.trim().replace(/^\(|\)$/g, '');
  let u: number;
  const pair = /^(\d+)\s*,\s*(\d+)$/.exec(t);
  if (pair) {
    if (g.kind !== 'monet')
      throw new Error(
        `inspect: unit '${text}' is an (i,j) pair, but ${groupName(g)} has ${g.kind} units (give a number)`,
      );
    const E = g.sideExperts!;
    const i = Number(pair[1]);
    const j = Number(pair[2]);
    if (i >= E || j >= E)
      throw new Error(`inspect: Monet expert (${i},${j}) out of range: both indices must be < ${E} (moe_experts)`);
    u = i * E + j;
  } else {
    const m = /^[ned]?(\d+)$/.exec(t);
    if (!m) throw new Error(`inspect: expected a unit id like 17, n17, e3, d5 or i,j (Monet), found '${text}'`);
    u = Number(m[1]);
  }
  if (u >= g.count)
    throw new Error(`inspect: unit ${text} out of range: ${groupName(g)} has ${g.count} ${g.kind} units`);
  return u;
}
