// A small declarative command-line parser for `monet train|sample|eval`. Every flag is declared once with its type,
// default and help; a wrong flag fails with what was expected, what was found, and which flag.

export type FlagType = 'int' | 'float' | 'string' | 'bool' | 'list';

export interface FlagSpec {
  name: string; // without the leading --
  type: FlagType;
  help: string;
  /** Allowed values for a string flag. */
  choices?: readonly string[];
  /** Lower bound for numbers (inclusive). */
  min?: number;
  /** Upper bound for numbers (inclusive). */
  max?: number;
  /** Strictly positive numbers. */
  positive?: boolean;
  /** Shown in help; parse() does not fill defaults in (callers merge them), so "given or not" stays visible. */
  default?: string;
}

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i][j] = Math.min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length][b.length];
}

/**
 * Parse `--name value`, `--name=value` and bare `--flag` for booleans (`--no-flag` sets false). 'list' flags take
 * comma-separated values and may repeat (`--data a.txt --data b.txt` or `--data a.txt,b.txt`); values that follow a
 * list flag without a leading -- are added to it too (`--data *.txt`). Positional arguments are refused.
 */
export function parseFlags(command: string, specs: readonly FlagSpec[], argv: readonly string[]): FlagValues {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: FlagValues = {};
  let i = 0;
  let lastList: string | undefined;
  while (i < argv.length) {
    const arg = argv[i++];
    if (!arg.startsWith('--')) {
      if (lastList !== undefined) {
        (out[lastList] as string[]).push(...arg.split(',').filter((s) => s.length > 0));
        continue;
      }
      throw new FlagError(
        `monet ${command}: unexpected argument '${arg}'; options are given as --name value ` +
          `(see monet ${command} --help)`,
      );
    }
    lastList = undefined;
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = byName.get(name);
    if (!spec && name.startsWith('no-') && byName.get(name.slice(3))?.type === 'bool' && value === undefined) {
      out[name.slice(3)] = false;
      continue;
    }
    if (!spec) {
      const near = specs
        .map((s) => s.name)
        .filter((n) => editDistance(n, name) <= 2 || n.includes(name) || name.includes(n));
      const hint = near.length ? `; did you mean ${near.map((n) => `--${n}`).join(' or ')}?` : '';
      throw new FlagError(`monet ${command}: unknown option --${name}${hint} (see monet ${command} --help)`);
    }
    if (spec.type === 'bool') {
      if (value === undefined) out[name] = true;
      else if (value === 'true' || value === '1') out[name] = true;
      else if (value === 'false' || value === '0') out[name] = false;
      else throw new FlagError(`monet ${command}: --${name} expects true or false, found '${value}'`);
      continue;
    }
    if (value === undefined) {
      if (i >= argv.length || (argv[i].startsWith('--') && argv[i].length > 2))
        throw new FlagError(`monet ${command}: --${name} needs a value (${describeType(spec)})`);
      value = argv[i++];
    }
    out[name] = convert(command, spec, value, out[name]);
    if (spec.type === 'list') lastList = name;
  }
  return out;
}

function describeType(s: FlagSpec): string {
  if (s.choices) return `one of ${s.choices.join(', ')}`;
  const an = s.type === 'int' ? 'an integer' : 'a number';
  switch (s.type) {
    case 'int':
    case 'float':
      if (s.max !== undefined) return `${an} in [${s.positive ? '>0' : (s.min ?? '-∞')}, ${s.max}]`;
      if (s.positive) return `a positive ${s.type === 'int' ? 'integer' : 'number'}`;
      return s.min !== undefined ? `${an} ≥ ${s.min}` : an;
    case 'list':
      return 'one or more comma-separated values';
    default:
      return 'a string';
  }
}

/**
 * Numbers in decimal notation only: digits with an optional sign, point and exponent (`3e-4`, `.5`, `-2`).
 * `Number()` also reads `0x10`, `0b11`, `Infinity` and surrounding spaces, which a flag must not silently turn into
 * 16, 3 or ∞.
 */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;

const inRange = (s: FlagSpec, v: number) =>
  !(s.positive && v <= 0) && !(s.min !== undefined && v < s.min) && !(s.max !== undefined && v > s.max);

/**
 * Whether a value read back from a file (saved options) fits a flag's declaration: null when it does, else what the
 * flag expects, in words.
 */
export function flagValueProblem(s: FlagSpec, v: unknown): string | null {
  let ok: boolean;
  switch (s.type) {
    case 'int':
      ok = typeof v === 'number' && Number.isSafeInteger(v) && inRange(s, v);
      break;
    case 'float':
      ok = typeof v === 'number' && Number.isFinite(v) && inRange(s, v);
      break;
    case 'string':
      ok = typeof v === 'string' && v !== '' && (!s.choices || s.choices.includes(v));
      break;
    case 'bool':
      ok = typeof v === 'boolean';
      break;
    case 'list':
      ok = Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x !== '');
      break;
  }
  return ok ? null : s.type === 'bool' ? 'true or false' : describeType(s);
}

function convert(command: string, s: FlagSpec, raw: string, prev: FlagValues[string]): FlagValues[string] {
  const bad = (why = '') =>
    new FlagError(`monet ${command}: --${s.name} expects ${describeType(s)}, found '${raw}'${why}`);
  switch (s.type) {
    case 'int':
    case 'float': {
      if (!(s.type === 'int' ? INTEGER : DECIMAL).test(raw)) {
        const readable = raw.trim() !== '' && !Number.isNaN(Number(raw));
        const rule =
          s.type === 'int' ? 'an integer is written in decimal digits' : 'numbers are read in decimal notation';
        throw bad(readable ? ` (${rule} only)` : '');
      }
      const v = Number(raw);
      if (!(s.type === 'int' ? Number.isSafeInteger(v) : Number.isFinite(v)) || !inRange(s, v)) throw bad();
      return v;
    }
    case 'string':
      if (s.choices && !s.choices.includes(raw)) throw bad();
      if (raw === '') throw bad();
      return raw;
    case 'list': {
      const items = raw.split(',').filter((x) => x.length > 0);
      if (items.length === 0) throw bad();
      return [...((prev as string[] | undefined) ?? []), ...items];
    }
    default:
      throw bad();
  }
}

export function formatHelp(usage: string, specs: readonly FlagSpec[]): string {
  const lines = [usage, '', 'Options:'];
  const w = Math.max(...specs.map((s) => s.name.length + (s.type === 'bool' ? 0 : 6))) + 4;
  for (const s of specs) {
    const value = s.choices ? s.choices.join('|') : s.type === 'list' ? 'a,b' : s.type;
    const left = `  --${s.name}${s.type === 'bool' ? '' : ` <${value}>`}`;
    const def = s.default !== undefined ? ` (default ${s.default})` : '';
    if (left.length >= w - 1) lines.push(left, ' '.repeat(w) + s.help + def);
    else lines.push(left.padEnd(w) + s.help + def);
  }
  return lines.join('\n');
}
