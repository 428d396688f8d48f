// schema/kinds.schema.json: up to date with src/kinds/ (`npm run kinds:schema`), and in agreement with the fixture
// loader: every committed fixture's config is valid against it, and a config the schema refuses for a key (unknown,
// missing, out of range, not among the values) the kind's parse function refuses too, naming that key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { loadFixture } from '../src/fixtures/format.ts';
import { ConfigError, type Tokens } from '../src/kinds/index.ts';
import { kindDecl, type FixtureKind } from '../src/kinds/index.ts';
import { type ConfigSchema, type KeySchema, kindsSchema, kindsSchemaText } from '../src/kinds/schema.ts';

const ROOT = join(import.meta.dirname, '..');
const committed = readFileSync(join(ROOT, 'schema', 'kinds.schema.json'), 'utf8');
const schema = kindsSchema();

test('schema/kinds.schema.json is what `npm run kinds:schema` writes', () => {
  assert.ok(committed === kindsSchemaText(), 'schema/kinds.schema.json is stale: run `npm run kinds:schema`');
});

/** The subschema of a config (lm: by its ffn). */
function subschema(kind: FixtureKind, config: Record<string, unknown>): ConfigSchema {
  const s = schema.$defs[kind === 'lm' ? `lm.${config.ffn}` : kind];
  assert.ok(s && 'properties' in s, `no subschema for ${kind} ${JSON.stringify(config.ffn)}`);
  return s as ConfigSchema;
}

/** The keys the schema refuses in a config: a small validator of the JSON Schema subset the file uses. */
function schemaErrors(s: ConfigSchema, config: Record<string, unknown>): string[] {
  const bad: string[] = [];
  const value = (v: unknown, p: KeySchema): boolean => {
    switch (p.type) {
      case 'integer':
      case 'number': {
        if (typeof v !== 'number' || !Number.isFinite(v) || (p.type === 'integer' && !Number.isInteger(v)))
          return false;
        return (
          (p.minimum === undefined || v >= p.minimum) &&
          (p.exclusiveMinimum === undefined || v > p.exclusiveMinimum) &&
          (p.maximum === undefined || v <= p.maximum)
        );
      }
      case 'string':
        return typeof v === 'string' && ('const' in p ? v === p.const : p.enum.includes(v));
      case 'boolean':
        return typeof v === 'boolean';
      case 'object': {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
        const o = v as Record<string, unknown>;
        return (
          p.required.every((n) => n in o) &&
          Object.entries(o).every(([n, x]) => n in p.properties && typeof x === 'number' && x >= 0)
        );
      }
      case 'array':
        return (
          Array.isArray(v) &&
          v.length >= p.minItems &&
          new Set(v).size === v.length &&
          v.every((i) => Number.isInteger(i) && i >= 0)
        );
    }
  };
  for (const [k, v] of Object.entries(config)) if (!(k in s.properties) || !value(v, s.properties[k])) bad.push(k);
  for (const k of s.required) if (!(k in config)) bad.push(k);
  return bad;
}

const cases = collectFixtureFiles([join(ROOT, 'fixtures')]).files.map((file) => {
  const f = loadFixture(file);
  const t = f.case.tensors;
  const tokens: Tokens =
    f.kind === 'lm'
      ? (t.get('in.tokens')!.shape as [number, number])
      : f.kind === 'topk'
        ? (t.get('in.x')!.shape as [number, number])
        : t.get('in.x')!.shape[0];
  return { file, kind: f.kind, config: f.case.config, tokens };
});

test('every committed fixture config is valid against the schema', () => {
  assert.ok(cases.length >= 60, `${cases.length} fixtures`);
  for (const c of cases) assert.equal(schemaErrors(subschema(c.kind, c.config), c.config), [], c.file);
});

/** The loader's verdict on a config: the key its ConfigError names, or null when it accepts it. */
function loaderRefuses(kind: FixtureKind, config: Record<string, unknown>, tokens: Tokens): string | null {
  try {
    kindDecl(kind).parse(config, 'test', tokens);
    return null;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.key ?? '(no key)';
  }
}

test('a key the schema refuses, the loader refuses, naming it (one fixture per kind and lm ffn)', () => {
  const seen = new Set<string>();
  let checked = 0;
  for (const c of cases) {
    const s = subschema(c.kind, c.config);
    if (seen.has(s.title)) continue;
    seen.add(s.title);
    const edits: [string, Record<string, unknown>][] = [['top_kk', { ...c.config, top_kk: 1 }]];
    for (const k of s.required) {
      const { [k]: _, ...rest } = c.config;
      edits.push([k, rest]);
    }
    for (const [k, p] of Object.entries(s.properties)) {
      if (p.type === 'integer' || p.type === 'number') {
        if (p.minimum !== undefined) edits.push([k, { ...c.config, [k]: p.minimum - 1 }]);
        if (p.exclusiveMinimum !== undefined) edits.push([k, { ...c.config, [k]: p.exclusiveMinimum }]);
        if (p.maximum !== undefined) edits.push([k, { ...c.config, [k]: p.maximum + 1 }]);
      }
      if (p.type === 'string' && k !== 'ffn') edits.push([k, { ...c.config, [k]: 'no-such-value' }]);
      if (p.type === 'boolean') edits.push([k, { ...c.config, [k]: 'yes' }]);
    }
    for (const [key, config] of edits) {
      assert.ok(schemaErrors(s, config).includes(key), `${s.title}: the schema accepts config.${key} edited`);
      const refused = loaderRefuses(c.kind, config, c.tokens);
      assert.ok(refused?.startsWith(key), `${c.file}: config.${key} edited: the loader said ${refused}`);
      checked++;
    }
  }
  assert.ok(seen.size >= 13, `${[...seen].join(', ')}: every kind and every lm ffn kind has a fixture`);
  assert.ok(checked > 100, `${checked} edits`);
});

test.run();
