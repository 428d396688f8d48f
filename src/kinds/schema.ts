// The kinds' declarations as a JSON Schema (draft 2020-12), for tools outside TypeScript: the PyTorch fixture writer
// (tools/pytorch/kinds.py) reads config keys, types, ranges, defaults and which keys are required from it, and each
// kind's tensor layout and rules between keys (the `x-monet-layout` and `x-monet-rules` of every subschema, the
// kinds' tables: src/kinds/layout-table.ts), instead of writing them again. `npm run kinds:schema` writes
// schema/kinds.schema.json; test/kinds-schema.test.ts fails when the committed file is not what this module makes.
//
// One subschema per fixture kind under $defs; the `lm` kind is one subschema per feed-forward kind (`lm.dense`,
// `lm.smoe`, …: the backbone's keys and that feed-forward's, `ffn` fixed), and `lm` is their oneOf. Every subschema
// lists all its keys (additionalProperties false), so a misspelled key is refused as the fixture loader refuses it.
//
// What JSON Schema keywords cannot say is exported as data: rules between keys ("num_experts a perfect square",
// "top_k at most √num_experts") as named checks in the tables' expression language, which each kind's parse
// function applies from the same declarations. Kept in words only: `layers` indices are below num_hidden_layers,
// intermediate_size is required when an lm has a dense layer, and an lm's sequence length is at most
// max_position_embeddings (the fixture loader checks all three).

import type { FfnKind } from '../../reference/lm-ffn.ts';
import type { KeySpec, KeyTable } from './config.ts';
import { FIXTURE_KINDS, KINDS } from './index.ts';
import type { KindTable, LayoutDecl, RuleDecl } from './layout-table.ts';
import { FFN_KINDS, LM_BACKBONE_KEYS, LM_FFN_KEYS } from './lm.ts';

/** The JSON Schema of one config key. */
export type KeySchema =
  | {
      type: 'integer' | 'number';
      description: string;
      minimum?: number;
      exclusiveMinimum?: number;
      maximum?: number;
      default?: number;
    }
  | { type: 'string'; description: string; enum: string[]; default?: string }
  | { type: 'string'; description: string; const: string }
  | { type: 'boolean'; description: string; default?: boolean }
  | {
      type: 'object';
      description: string;
      properties: Record<string, { type: 'number'; minimum: 0 }>;
      required: string[];
      additionalProperties: false;
    }
  | {
      type: 'array';
      description: string;
      items: { type: 'integer'; minimum: 0 };
      minItems: 1;
      uniqueItems: true;
    };

/** The JSON Schema of one kind's config (or one lm feed-forward variant). */
export interface ConfigSchema {
  type: 'object';
  title: string;
  properties: Record<string, KeySchema>;
  required: string[];
  additionalProperties: false;
  /** The tensors of a case (src/kinds/layout-table.ts). */
  'x-monet-layout': LayoutDecl;
  /** The rules between keys. */
  'x-monet-rules': readonly RuleDecl[];
}

export interface KindsSchema {
  $schema: 'https://json-schema.org/draft/2020-12/schema';
  $id: string;
  title: string;
  description: string;
  /** The fixture kinds, in the loader's order. */
  'x-fixture-kinds': string[];
  /** The lm kind's feed-forward kinds: `$defs` has `lm.<ffn>` for each. */
  'x-lm-ffn-kinds': string[];
  $defs: Record<string, ConfigSchema | { title: string; oneOf: { $ref: string }[] }>;
}

function keySchema(spec: KeySpec): KeySchema {
  const description =
    spec.type === 'int' && spec.requiredIf ? `${spec.doc} (required if ${spec.requiredIf})` : spec.doc;
  switch (spec.type) {
    case 'int':
      return { type: 'integer', description, minimum: spec.min, maximum: spec.max, default: spec.default };
    case 'number':
      return {
        type: 'number',
        description,
        minimum: spec.min,
        exclusiveMinimum: spec.above,
        maximum: spec.max,
        default: spec.default,
      };
    case 'enum':
      return { type: 'string', description, enum: [...spec.values], default: spec.default };
    case 'bool':
      return { type: 'boolean', description, default: spec.default };
    case 'coefs':
      return {
        type: 'object',
        description,
        properties: Object.fromEntries(spec.names.map((n) => [n, { type: 'number', minimum: 0 } as const])),
        required: [...spec.names],
        additionalProperties: false,
      };
    case 'layers':
      return {
        type: 'array',
        description: `${description} (each below num_hidden_layers)`,
        items: { type: 'integer', minimum: 0 },
        minItems: 1,
        uniqueItems: true,
      };
  }
}

/** A key is required when it has no default and no condition (a `coefs` table has no default: always required). */
function isRequired(spec: KeySpec): boolean {
  if (spec.type === 'coefs' || spec.type === 'layers') return true;
  if (spec.type === 'int' && spec.requiredIf) return false;
  return spec.default === undefined;
}

export function configSchema(title: string, keys: KeyTable, table: KindTable): ConfigSchema {
  return {
    type: 'object',
    title,
    properties: Object.fromEntries(Object.entries(keys).map(([k, s]) => [k, keySchema(s)])),
    required: Object.entries(keys)
      .filter(([, s]) => isRequired(s))
      .map(([k]) => k),
    additionalProperties: false,
    'x-monet-layout': table.layout,
    'x-monet-rules': table.rules,
  };
}

/** The lm kind with one feed-forward kind: every backbone key, `ffn` fixed, and that feed-forward's keys. */
function lmVariantSchema(ffn: FfnKind): ConfigSchema {
  const keys = { ...LM_BACKBONE_KEYS, ...LM_FFN_KEYS[ffn] };
  const s = configSchema(`kind 'lm' with ffn '${ffn}'`, keys, KINDS.lm.tables[`lm.${ffn}`]);
  s.properties.ffn = { type: 'string', description: LM_BACKBONE_KEYS.ffn.doc, const: ffn };
  return s;
}

/** The whole document, key order fixed (the committed file is compared byte for byte). */
export function kindsSchema(): KindsSchema {
  const defs: KindsSchema['$defs'] = {};
  for (const kind of FIXTURE_KINDS) {
    if (kind === 'lm') {
      defs.lm = { title: "kind 'lm'", oneOf: FFN_KINDS.map((f) => ({ $ref: `#/$defs/lm.${f}` })) };
      for (const f of FFN_KINDS) defs[`lm.${f}`] = lmVariantSchema(f);
    } else defs[kind] = configSchema(`kind '${kind}'`, KINDS[kind].keys, KINDS[kind].tables[kind]);
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'monet-ts/kinds.schema.json',
    title: 'monet-ts fixture kinds: the config and the tensors of each kind',
    description:
      'Made by `npm run kinds:schema` from src/kinds/ (do not edit). A fixture of kind K has metadata config ' +
      'valid against $defs[K] and satisfying its x-monet-rules (rules between keys: each check holds where its ' +
      'when does, else config.<key> is refused with the expected text), and holds the tensors of its ' +
      'x-monet-layout evaluated for that config and the case sizes. Expressions: integers, floats, ' +
      "'strings', names (config keys with defaults filled in, sizes, loop variables), + - * // %, comparisons, " +
      'in, not in, and, or, not, parentheses, isqrt(), len(), max(); a subset of Python with its meaning. ' +
      'A tensor with `for` is one tensor per value of each loop variable in range(count); with `when`, present ' +
      'only where it holds. grad.<name> (same shape) for every param and every tensor with grad; ' +
      'next.<state name> for every state tensor where the layout’s `next` holds. Expected texts: {expression} ' +
      'stands for its value.',
    'x-fixture-kinds': [...FIXTURE_KINDS],
    'x-lm-ffn-kinds': [...FFN_KINDS],
    $defs: defs,
  };
}

/**
 * The committed file's text: the document, two-space indented, undefined fields left out, newline-terminated; an
 * array of numbers and strings (a shape, a list of keys) on one line.
 */
export function kindsSchemaText(): string {
  const text = JSON.stringify(kindsSchema(), null, 2);
  const oneLine = (_: string, inner: string) => `[${inner.split(/,\n\s*/).join(', ')}]`;
  return `${text.replace(/\[\n\s+([^[\]{}]*?)\n\s*\]/g, oneLine)}\n`;
}
