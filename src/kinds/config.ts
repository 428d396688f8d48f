// Config keys, their declarations and the one reader every kind parses its config with.
//
// Each layer kind (src/kinds/<kind>.ts) declares its keys once, as a table of KeySpec: the type, the allowed range
// or values, the default (absent = required) and a one-line description. The ConfigReader reads a raw JSON config
// through that table, so that a key's range and default live in one place; the kinds' JSON Schema for other tools
// is made from the same table.
// Rules that tie several keys together (N a perfect square, top-k at most √N, …) are declared once, as data, in the
// kind's file (a RuleDecl: src/kinds/layout-table.ts); the kind's parse function applies each with `reader.check`
// where it reads the keys, and the JSON schema exports the same declarations.
//
// Errors say what was expected, what was found and where: `<where>: config.<key>: expected …, found …`.

import { type Env, evaluate, expectedText, type RuleDecl, type Value } from './layout-table.ts';

/** A config that cannot be used: names the key, what was expected and what was found, and where. */
export class ConfigError extends Error {
  constructor(
    /** The message without the place. */
    readonly detail: string,
    readonly where: string,
    readonly key?: string,
  ) {
    super(`${where}: ${detail}`);
    this.name = 'ConfigError';
  }
}

/**
 * The declaration of one config key. A spec without `default` is required, unless `requiredIf` says when it is (a
 * rule the kind's parse function applies; the words are for the JSON schema's readers).
 */
export type KeySpec =
  | { type: 'int'; min: number; max?: number; default?: number; requiredIf?: string; doc: string }
  | {
      type: 'number';
      /** Inclusive lower bound; `above` is the exclusive one (e.g. an epsilon: above 0). */
      min?: number;
      above?: number;
      max?: number;
      default?: number;
      doc: string;
    }
  | { type: 'enum'; values: readonly string[]; default?: string; doc: string }
  | { type: 'bool'; default?: boolean; doc: string }
  /** An object of named coefficients ≥ 0 (config.aux): exactly these names. */
  | { type: 'coefs'; names: readonly string[]; doc: string }
  /** A list of distinct layer indices in [0, num_hidden_layers). */
  | { type: 'layers'; doc: string };

/** A kind's key table. */
export type KeyTable = Readonly<Record<string, KeySpec>>;

/** A short, shallow description of a value read from a file, for error messages (never a whole nested value). */
export function preview(v: unknown): string {
  const leaf = (x: unknown): string => {
    if (x === null || typeof x !== 'object')
      return typeof x === 'string' ? JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x) : String(x);
    return Array.isArray(x) ? '[…]' : '{…}';
  };
  if (Array.isArray(v)) return `[${v.slice(0, 8).map(leaf).join(', ')}${v.length > 8 ? ', …' : ''}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v);
    const shown = entries.slice(0, 8).map(([k, x]) => `${JSON.stringify(k.slice(0, 40))}: ${leaf(x)}`);
    return `{${shown.join(', ')}${entries.length > 8 ? ', …' : ''}}`;
  }
  return leaf(v);
}

/** What a spec accepts, in words ("an integer ≥ 1", "a number in [0, 1]", "one of 'relu', 'gelu'"). */
export function describeSpec(s: KeySpec): string {
  switch (s.type) {
    case 'int':
      return s.max === undefined ? `an integer ≥ ${s.min}` : `an integer in [${s.min}, ${s.max}]`;
    case 'number': {
      const lo = s.above !== undefined ? `> ${s.above}` : s.min !== undefined ? `≥ ${s.min}` : '';
      if (s.max !== undefined && s.min !== undefined) return `a number in [${s.min}, ${s.max}]`;
      if (s.max !== undefined) return `a finite number ${lo ? `${lo} and ` : ''}≤ ${s.max}`;
      return lo ? `a finite number ${lo}` : 'a finite number';
    }
    case 'enum':
      return `one of ${s.values.map((v) => `'${v}'`).join(', ')}`;
    case 'bool':
      return 'true or false';
    case 'coefs':
      return `an object {${s.names.join(', ')}} of finite numbers ≥ 0`;
    case 'layers':
      return 'an array of distinct layer indices';
  }
}

/** Levenshtein distance, for "did you mean" on a misspelled key. */
export function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/**
 * Reads a raw config through a kind's key table. Every read is recorded; `finish()` refuses keys that were never
 * read (unknown, misspelled, or belonging to another variant of the kind), naming the closest declared key.
 */
export class ConfigReader {
  private readonly used = new Set<string>();
  constructor(
    readonly raw: Readonly<Record<string, unknown>>,
    readonly keys: KeyTable,
    readonly where: string,
    /** What the table belongs to, for messages ("kind 'peer'", "kind 'lm' with ffn 'monet'"). */
    readonly owner: string,
    /** Where an unexpected key belongs instead, when known (e.g. "ffn 'smoe', 'monet'"), for the message. */
    readonly belongsTo: (key: string) => string | undefined = () => undefined,
  ) {}

  private spec(key: string): KeySpec {
    const s = this.keys[key];
    if (!s) throw new Error(`internal: ${this.owner} reads config.${key}, which its key table does not declare`);
    return s;
  }

  /** A ConfigError naming the key, the expectation and the value found. */
  fail(key: string, expected: string, found: unknown = this.raw[key]): never {
    const f = found === undefined ? 'nothing (key missing)' : preview(found);
    throw new ConfigError(`config.${key}: expected ${expected}, found ${f}`, this.where, key);
  }

  /**
   * A declared rule between keys: when its `when` holds and its `check` does not, config.<key> is refused with its
   * expected text. The keys it reads are the raw config's (or their defaults); `sizes` adds the case's sizes that
   * are not keys (topk's F). Apply it after reading (and so checking) the keys it names.
   */
  check(rule: RuleDecl, sizes: Env = {}): void {
    const env: Record<string, Value | undefined> = { ...sizes };
    for (const [k, s] of Object.entries(this.keys))
      env[k] = (this.raw[k] ?? (s as { default?: unknown }).default) as Value | undefined;
    if (rule.when !== undefined && evaluate(rule.when, env) !== true) return;
    if (evaluate(rule.check, env) !== true) this.fail(rule.key, expectedText(rule, env));
  }

  has(key: string): boolean {
    this.spec(key);
    return this.raw[key] !== undefined;
  }

  private value(key: string): unknown {
    this.used.add(key);
    const v = this.raw[key];
    return v === undefined ? (this.spec(key) as { default?: unknown }).default : v;
  }

  int(key: string): number {
    const s = this.spec(key);
    if (s.type !== 'int') throw new Error(`internal: config.${key} is declared ${s.type}, read as int`);
    const v = this.value(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < s.min || (s.max !== undefined && v > s.max))
      this.fail(key, describeSpec(s));
    return v;
  }

  num(key: string): number {
    const s = this.spec(key);
    if (s.type !== 'number') throw new Error(`internal: config.${key} is declared ${s.type}, read as number`);
    const v = this.value(key);
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (s.min === undefined || v >= s.min) &&
      (s.above === undefined || v > s.above) &&
      (s.max === undefined || v <= s.max);
    if (!ok) this.fail(key, describeSpec(s));
    return v as number;
  }

  oneOf<T extends string>(key: string): T {
    const s = this.spec(key);
    if (s.type !== 'enum') throw new Error(`internal: config.${key} is declared ${s.type}, read as enum`);
    const v = this.value(key);
    if (typeof v !== 'string' || !s.values.includes(v)) this.fail(key, describeSpec(s));
    return v as T;
  }

  bool(key: string): boolean {
    const s = this.spec(key);
    if (s.type !== 'bool') throw new Error(`internal: config.${key} is declared ${s.type}, read as bool`);
    const v = this.value(key);
    if (typeof v !== 'boolean') this.fail(key, describeSpec(s));
    return v;
  }

  /** config.aux-style coefficients: exactly the declared names, each a finite number ≥ 0. */
  coefs<N extends string>(key: string): Record<N, number> {
    const s = this.spec(key);
    if (s.type !== 'coefs') throw new Error(`internal: config.${key} is declared ${s.type}, read as coefs`);
    const v = this.value(key);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(key, describeSpec(s));
    const o = v as Record<string, unknown>;
    const out: Record<string, number> = {};
    for (const n of s.names) {
      const c = o[n];
      if (typeof c !== 'number' || !Number.isFinite(c) || c < 0)
        this.fail(`${key}.${n}`, 'a finite number ≥ 0 (the loss coefficient; 0 turns it off)', c);
      out[n] = c;
    }
    for (const n of Object.keys(o))
      if (!s.names.includes(n)) this.fail(`${key}.${n}`, `no such aux loss: only ${s.names.join(', ')}`, o[n]);
    return out as Record<N, number>;
  }

  /** Distinct layer indices in [0, L). */
  layers(key: string, L: number): number[] {
    const s = this.spec(key);
    if (s.type !== 'layers') throw new Error(`internal: config.${key} is declared ${s.type}, read as layers`);
    const v = this.value(key);
    const ok =
      Array.isArray(v) &&
      v.every((i) => Number.isSafeInteger(i) && i >= 0 && i < L) &&
      new Set(v).size === v.length &&
      v.length > 0;
    if (!ok) this.fail(key, `a non-empty array of distinct layer indices in [0, ${L})`);
    return v as number[];
  }

  /** Mark a key as belonging to this config without reading it (e.g. a key the kind accepts and ignores). */
  accept(key: string): void {
    this.spec(key);
    this.used.add(key);
  }

  /** Why `key` is not expected here: unused by this variant, declared elsewhere, or unknown (with a near key). */
  private unexpected(key: string): string {
    if (this.keys[key]) return `${this.owner} does not use it with this config`;
    const other = this.belongsTo(key);
    if (other) return `${this.owner} has no such key; it belongs to ${other}`;
    const near = Object.keys(this.keys)
      .map((k) => ({ k, dist: distance(key, k) }))
      .filter((x) => x.dist <= 2)
      .sort((a, b) => a.dist - b.dist)[0];
    return `not a key of ${this.owner}${near ? `; did you mean '${near.k}'?` : ''}`;
  }

  /** Refuse every key of the raw config that no read asked for (all of them in one message). */
  finish(): void {
    const extra = Object.keys(this.raw).filter((k) => !this.used.has(k) && this.raw[k] !== undefined);
    if (extra.length === 1)
      throw new ConfigError(`config.${extra[0]}: unexpected key (${this.unexpected(extra[0])})`, this.where, extra[0]);
    if (extra.length > 1) {
      const list = extra.map((k) => `config.${k} (${this.unexpected(k)})`).join(', ');
      throw new ConfigError(`unexpected keys: ${list}`, this.where, extra[0]);
    }
  }
}

/** The parsed config of a JSON text or object: a plain object, or a ConfigError naming `where`. */
export function asConfigObject(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new ConfigError(`config must be a JSON object, found ${preview(v)}`, where);
  return v as Record<string, unknown>;
}
