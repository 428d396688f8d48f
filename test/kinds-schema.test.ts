// schema/kinds.schema.json: up to date with src/kinds/ (`npm run kinds:schema`), and in agreement with the fixture
// loader: every committed fixture's config is valid against it, and a config the schema refuses for a key (unknown,
// missing, out of range, not among the values) the kind's parse function refuses too, naming that key; every
// fixture's config keeps the exported rules, and the exported layout evaluated for it is the kind's layout() (names
// and shapes) and holds the file's tensors (shapes and dtypes).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectFixtureFiles } from '../src/cli/check.ts';
import { loadFixture } from '../src/fixtures/format.ts';
import { ConfigError, type Tokens } from '../src/kinds/index.ts';
import { kindDecl, type FixtureKind } from '../src/kinds/index.ts';
import {
  brokenRules,
  type Env,
  evaluate,
  evaluateLayout,
  expectedText,
  type TensorDtype,
} from '../src/kinds/layout-table.ts';
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

/** A case's config with the schema's defaults filled in and its sizes: what the exported expressions read. */
function envOf(s: ConfigSchema, c: (typeof cases)[number]): Env {
  const env: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(s.properties)) if ('default' in p && p.default !== undefined) env[k] = p.default;
  Object.assign(env, c.config);
  const sizes = Object.keys(s['x-monet-layout'].sizes);
  const dims = Array.isArray(c.tokens) ? c.tokens : [c.tokens];
  assert.equal(sizes.length, dims.length, `${c.file}: sizes ${sizes}`);
  sizes.forEach((n, i) => {
    env[n] = dims[i];
  });
  return env as Env;
}

test('the layout language reads as Python does (floor division, modulo, precedence, membership)', () => {
  const env = { a: 7, b: -7, xs: [0, 2], s: 'swiglu', t: true };
  assert.is(evaluate('a // 2 * 2 + a % 2', env), 7);
  assert.is(evaluate('b // 2', env), -4);
  assert.is(evaluate('b % 3', env), 2);
  assert.is(evaluate('-a + 2 * (3 - 1)', env), -3);
  assert.is(evaluate("s == 'swiglu' and not t or 2 in xs", env), true);
  assert.is(evaluate('1 not in xs and isqrt(a * 7) == 7 and len(xs) == max(xs)', env), true);
  assert.throws(() => evaluate('c + 1', env), /no value for 'c'/);
  assert.throws(() => evaluate('a +', env), /unexpected end/);
});

const ROLES = ['inputs', 'params', 'state', 'outputs', 'optionalOutputs', 'idx', 'next'] as const;
const DTYPES: Record<TensorDtype, string[]> = { real: ['F64', 'F32'], int: ['I32', 'I64'], bool: ['U8'] };

test('the exported layout is the loader’s for every committed fixture, and holds its tensors', () => {
  let tensors = 0;
  for (const c of cases) {
    const s = subschema(c.kind, c.config);
    const env = envOf(s, c);
    assert.equal(brokenRules(s['x-monet-rules'], env), [], `${c.file}: rules`);
    const exported = evaluateLayout(s['x-monet-layout'], env);
    const got = exported.map((t) => `${t.name} [${t.shape}]`).sort();
    const layout = kindDecl(c.kind).layout(kindDecl(c.kind).parse(c.config, c.file, c.tokens), c.tokens);
    const want = ROLES.flatMap((role) => [...layout[role]].map(([n, sh]) => `${n} [${sh}]`));
    for (const n of layout.differentiableInputs) want.push(`grad.in.${n} [${layout.inputs.get(`in.${n}`)}]`);
    for (const [n, sh] of layout.params) want.push(`grad.${n} [${sh}]`);
    assert.equal(got, want.sort(), c.file);
    const byName = new Map(exported.map((t) => [t.name, t]));
    for (const [name, t] of loadFixture(c.file).case.tensors) {
      const e = byName.get(name);
      assert.ok(e, `${c.file}: ${name} is not in the exported layout`);
      const scalar = e.shape.length === 0 && t.shape.length === 1 && t.shape[0] === 1; // (1,) is allowed
      assert.ok(scalar || `${t.shape}` === `${e.shape}`, `${c.file}: ${name} [${t.shape}], layout [${e.shape}]`);
      assert.ok(DTYPES[e.dtype].includes(t.dtype), `${c.file}: ${name} ${t.dtype}, layout ${e.dtype}`);
      tensors++;
    }
  }
  assert.ok(tensors > 1000, `${tensors} tensors`);
});

test('a config breaking an exported rule is refused by the loader with the rule’s key and text', () => {
  // one edit per rule, on the first fixture of each subschema: the value the rule's check names first, changed
  const edits: Record<string, [string, number][]> = {
    peer: [
      ['num_experts', 15],
      ['top_k', 5],
      ['key_dim', 5],
    ],
    smoe: [['top_k', 99]],
    'topk-ffn': [['k', 999]],
    'monet-router': [['moe_topk', 99]],
    'monet-vd': [
      ['moe_topk', 99],
      ['moe_dim', 5],
    ],
    'lm.dense': [
      ['num_attention_heads', 3],
      ['num_key_value_heads', 99],
    ],
    'lm.topk': [['n_last_non_topk', 99]],
  };
  let checked = 0;
  const seen = new Set<string>();
  for (const c of cases) {
    const name = c.kind === 'lm' ? `lm.${c.config.ffn}` : c.kind;
    if (seen.has(name) || !edits[name]) continue;
    seen.add(name);
    const s = subschema(c.kind, c.config);
    for (const [key, v] of edits[name]) {
      const config = { ...c.config, [key]: v };
      const env = envOf(s, { ...c, config });
      const broken = brokenRules(s['x-monet-rules'], env);
      assert.ok(broken.length > 0, `${name}: config.${key} = ${v} breaks no rule`);
      const message = `config.${broken[0].key}: expected ${expectedText(broken[0], env)}, found `;
      assert.throws(
        () => kindDecl(c.kind).parse(config, 'test', c.tokens),
        (e: unknown) => e instanceof ConfigError && e.key === broken[0].key && e.message.includes(message),
        `${name}: config.${key} = ${v}: expected the message ${message}`,
      );
      checked++;
    }
  }
  assert.is(checked, 11);
});

test.run();
