// Every fixture kind's declaration, by name. The fixture loader, the case runners, the generator and the JSON
// schema look kinds up here; a kind added to FIXTURE_KINDS without a declaration is a compile error.

import type { DenseFfnConfig } from '../../reference/dense-ffn.ts';
import type { LmConfig } from '../../reference/lm.ts';
import type { MonetLayerConfig } from '../../reference/monet-layer.ts';
import type { MonetRouterConfig } from '../../reference/monet-router.ts';
import type { PeerConfig } from '../../reference/peer.ts';
import type { TopkFfnConfig } from '../../reference/topk-ffn.ts';
import type { TopkConfig } from '../../reference/topk.ts';
import { denseFfnKind } from './dense-ffn.ts';
import type { KindDecl } from './kind.ts';
import { lmKind } from './lm.ts';
import { monetHdKind, monetRouterKind, monetVdKind } from './monet.ts';
import { peerKind } from './peer.ts';
import { smoeKind, type SmoeKindConfig } from './smoe.ts';
import { topkFfnKind, topkKind } from './topk.ts';

export const FIXTURE_KINDS = [
  'dense-ffn',
  'smoe',
  'topk',
  'topk-ffn',
  'peer',
  'monet-router',
  'monet-hd',
  'monet-vd',
  'lm',
] as const;
export type FixtureKind = (typeof FIXTURE_KINDS)[number];

export function isFixtureKind(s: string): s is FixtureKind {
  return (FIXTURE_KINDS as readonly string[]).includes(s);
}

/** The parsed config type of each kind. */
export interface KindConfigs {
  'dense-ffn': DenseFfnConfig;
  smoe: SmoeKindConfig;
  topk: TopkConfig & { F: number };
  'topk-ffn': TopkFfnConfig;
  peer: PeerConfig;
  'monet-router': MonetRouterConfig;
  'monet-hd': MonetLayerConfig;
  'monet-vd': MonetLayerConfig;
  lm: LmConfig;
}

export const KINDS: { [K in FixtureKind]: KindDecl<KindConfigs[K]> } = {
  'dense-ffn': denseFfnKind,
  smoe: smoeKind,
  topk: topkKind,
  'topk-ffn': topkFfnKind,
  peer: peerKind,
  'monet-router': monetRouterKind,
  'monet-hd': monetHdKind,
  'monet-vd': monetVdKind,
  lm: lmKind,
};

/** A kind's declaration with its config type erased (for code that handles any kind). */
export function kindDecl(kind: FixtureKind): KindDecl<unknown> {
  return KINDS[kind] as KindDecl<unknown>;
}

export { ConfigError } from './config.ts';
export type { KindDecl, Tokens } from './kind.ts';
export type { KindLayout, ParamSpec, Shape, StateSpec } from './tensors.ts';
