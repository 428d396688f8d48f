// What a kind declaration provides. One declaration per fixture kind (src/kinds/<kind>.ts); the fixture loader, the
// reference and device case runners, the trainer presets and (through the exported JSON schema) the PyTorch fixture
// writer all read it, so that each rule about a kind's config is written once.

import type { KeyTable } from './config.ts';
import type { KindTable } from './layout-table.ts';
import type { KindLayout, ParamSpec, StateSpec } from './tensors.ts';

/**
 * The token extent of a case: T for layer kinds (the first axis of in.x), [T, F] for `topk` (both axes of in.x: F is
 * not in its config), [B, S] for `lm` (in.tokens).
 */
export type Tokens = number | [number, number];

export interface KindDecl<C> {
  readonly name: string;
  /** The config keys: type, range, default (src/kinds/config.ts). */
  readonly keys: KeyTable;
  /**
   * The tensor layout and the rules between keys as data (exported in the JSON schema), by subschema name: the
   * kind's name, or `lm.<ffn>` for each feed-forward kind of `lm`.
   */
  readonly tables: Readonly<Record<string, KindTable>>;
  /** A typed config from a raw JSON object; a ConfigError names the key, what was expected and found, and where. */
  parse(raw: Readonly<Record<string, unknown>>, where: string, tokens?: Tokens): C;
  /** Parameters, names relative to the case (`param.` + name), in the order generators draw them. Lazy. */
  params(c: C): Iterable<ParamSpec>;
  /** State tensors (`state.` + name). */
  state(c: C): Iterable<StateSpec>;
  /** Every tensor name and shape of a correct case with `tokens`. */
  layout(c: C, tokens: Tokens): KindLayout;
}
