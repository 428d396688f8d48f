// The tensor layout of a kind and its rules between config keys, as data: what the kinds' JSON Schema exports
// (`x-monet-layout`, `x-monet-rules`) for tools outside TypeScript, and what this module evaluates for a config.
//
// A tensor is declared once with its full name (`param.experts.{e}.w1.weight`), its shape as a list of integers and
// expressions over the config keys and the case's sizes (T tokens; B, S for lm; F for topk), its role, its dtype
// class, and optionally a condition (`when`) and loops (`for`: the name's {e}, {i} placeholders run over
// range(expression)). The expressions are a small language that is also a subset of Python, so the PyTorch writer
// evaluates them with its own standard library (tools/pytorch/kinds.py):
//   integers, floats, 'strings', names (config keys, sizes, loop variables), + - * // %, == != < <= > >=, in, not in,
//   and, or, not, parentheses, and the functions isqrt(n), len(list), max(list).
// A rule is a named check: when `when` holds, `check` must, or config.<key> is refused with `expected`.
//
// test/kinds-schema.test.ts evaluates these tables for every committed fixture and compares them with each kind's
// layout() (names and shapes) and the rules with what the fixture loader accepts.

import type { Shape } from './tensors.ts';

/** What a tensor is in a case: which name prefix and which part of the fixture format (docs/fixtures.md §1). */
export type TensorRole = 'input' | 'seed' | 'param' | 'state' | 'output' | 'optional-output' | 'index';

/** real: F64/F32 (F16, BF16 where allowed); int: I32/I64 indices or token ids; bool: U8 0/1 masks. */
export type TensorDtype = 'real' | 'int' | 'bool';

export interface TensorDecl {
  /** The full name in a file, with {var} placeholders for the loops. */
  name: string;
  shape: (number | string)[];
  role: TensorRole;
  dtype: TensorDtype;
  /** An input a backward differentiates (grad.<name> is expected for it; params always have one). */
  grad?: true;
  /** A state tensor's initial value (PyTorch BatchNorm: running mean 0, running variance 1). */
  init?: 0 | 1;
  when?: string;
  /** Loops, outermost first: [variable, count expression]. */
  for?: [string, string][];
}

export interface RuleDecl {
  /** A short identifier. */
  name: string;
  /** The key a violation is reported against (config.<key>), or a tensor name for a rule on the case's sizes. */
  key: string;
  when?: string;
  check: string;
  /** What was expected, in words (the fixture loader's message says the same). */
  expected: string;
}

/** A kind's (or an lm feed-forward variant's) exported table: its tensors and its rules between keys. */
export interface KindTable {
  layout: LayoutDecl;
  rules: readonly RuleDecl[];
}

export interface LayoutDecl {
  /** The case's sizes that are not config keys, each with where it is read. */
  sizes: Record<string, string>;
  tensors: TensorDecl[];
  /** When the file also holds next.<state name> (the state after a train-mode step), each as its state tensor. */
  next?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// building the tables

type Opts = Pick<TensorDecl, 'when' | 'for' | 'grad' | 'init'>;
const decl =
  (role: TensorRole, prefix: string, dtype: TensorDtype = 'real') =>
  (name: string, shape: (number | string)[], opts: Opts = {}): TensorDecl => ({
    name: prefix + name,
    shape,
    role,
    dtype,
    ...opts,
  });

export const input = decl('input', 'in.');
export const seed = decl('seed', 'in.');
export const param = decl('param', 'param.');
export const output = decl('output', 'out.');
export const optionalOutput = decl('optional-output', 'out.');
export const indexOf = decl('index', 'idx.', 'int');
export const maskOf = decl('index', 'idx.', 'bool');
export const stateOf = decl('state', 'state.');

/** BatchNorm running statistics `<prefix>running_mean` (0) and `<prefix>running_var` (1), each of `width`. */
export function runningStatsDecl(prefix: string, width: string): TensorDecl[] {
  return [
    stateOf(`${prefix}running_mean`, [width], { init: 0 }),
    stateOf(`${prefix}running_var`, [width], { init: 1 }),
  ];
}

/** The same declarations under a prefix inserted after the role's (`param.` + prefix + name), with a condition and
 * loops added (ANDed, outermost first). */
export function nested(prefix: string, tensors: TensorDecl[], opts: { when?: string; for?: [string, string][] } = {}) {
  return tensors.map((t): TensorDecl => {
    const dot = t.name.indexOf('.') + 1;
    const when = [opts.when, t.when].filter((w) => w !== undefined);
    const loops = [...(opts.for ?? []), ...(t.for ?? [])];
    return {
      ...t,
      name: t.name.slice(0, dot) + prefix + t.name.slice(dot),
      ...(when.length ? { when: when.length === 1 ? when[0] : when.map((w) => `(${w})`).join(' and ') } : {}),
      ...(loops.length ? { for: loops } : {}),
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the expression language

export type Value = number | string | boolean | readonly number[];
export type Env = Readonly<Record<string, Value | undefined>>;

const TOKEN =
  /\s*(?:(\d+\.\d*(?:e[-+]?\d+)?|\d+(?:e[-+]?\d+)?)|'([^']*)'|([A-Za-z_]\w*)|(\/\/|==|!=|<=|>=|[-+*%<>(),]))/y;

type Tok = { num: number } | { str: string } | { name: string } | { op: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m) throw new Error(`expression ${JSON.stringify(src)}: cannot read from position ${at}`);
    if (m[1] !== undefined) out.push({ num: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ str: m[2] });
    else if (m[3] !== undefined) out.push({ name: m[3] });
    else out.push({ op: m[4] });
  }
  return out;
}

/** Evaluates an expression of the layout language against `env` (a missing name is an error naming it). */
export function evaluate(src: string, env: Env): Value {
  const toks = tokenize(src);
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`expression ${JSON.stringify(src)}: ${what}`);
  };
  const isOp = (op: string) => {
    const t = toks[i];
    return t !== undefined && (('op' in t && t.op === op) || ('name' in t && t.name === op));
  };
  /** Consumes the operator or keyword `op` when it comes next. */
  const take = (op: string): boolean => {
    if (!isOp(op)) return false;
    i++;
    return true;
  };
  const eat = (op: string) => {
    if (!take(op)) fail(`expected '${op}' at token ${i}`);
  };
  const num = (v: Value): number => (typeof v === 'number' ? v : fail(`expected a number, found ${String(v)}`));
  const list = (v: Value): readonly number[] => (Array.isArray(v) ? v : fail(`expected a list, found ${String(v)}`));
  const FUNCS: Record<string, (v: Value) => Value> = {
    isqrt: (v) => Math.floor(Math.sqrt(num(v))),
    len: (v) => list(v).length,
    max: (v) => Math.max(...list(v)),
  };
  const atom = (): Value => {
    const t = toks[i++];
    if (t === undefined) return fail('unexpected end');
    if ('num' in t) return t.num;
    if ('str' in t) return t.str;
    if ('op' in t && t.op === '(') {
      const v = or();
      eat(')');
      return v;
    }
    if ('name' in t) {
      if (isOp('(')) {
        const f = FUNCS[t.name] ?? fail(`no function ${t.name}`);
        eat('(');
        const v = or();
        eat(')');
        return f(v);
      }
      const v = env[t.name];
      return v === undefined ? fail(`no value for '${t.name}'`) : v;
    }
    return fail(`unexpected '${t.op}'`);
  };
  const unary = (): Value => (take('-') ? -num(unary()) : atom());
  const product = (): Value => {
    let v = unary();
    for (;;) {
      if (take('*')) v = num(v) * num(unary());
      else if (take('//')) v = Math.floor(num(v) / num(unary()));
      else if (take('%')) {
        const b = num(unary());
        v = ((num(v) % b) + b) % b; // Python's modulo: the sign of the divisor
      } else return v;
    }
  };
  const sum = (): Value => {
    let v = product();
    for (;;) {
      if (take('+')) v = num(v) + num(product());
      else if (take('-')) v = num(v) - num(product());
      else return v;
    }
  };
  const compare = (): Value => {
    const a = sum();
    const ops = ['==', '!=', '<=', '>=', '<', '>', 'in', 'not'];
    const op = ops.find(isOp);
    if (op === undefined) return a;
    i++;
    if (op === 'not') eat('in');
    const b = sum();
    switch (op) {
      case '==':
        return a === b;
      case '!=':
        return a !== b;
      case '<=':
        return num(a) <= num(b);
      case '>=':
        return num(a) >= num(b);
      case '<':
        return num(a) < num(b);
      case '>':
        return num(a) > num(b);
      case 'in':
        return list(b).includes(num(a));
      default:
        return !list(b).includes(num(a));
    }
  };
  const bool = (v: Value): boolean => (typeof v === 'boolean' ? v : fail(`expected true or false, found ${v}`));
  const not = (): Value => (take('not') ? !bool(not()) : compare());
  const and = (): Value => {
    let v = not();
    while (take('and')) {
      const w = not();
      v = bool(v) && bool(w);
    }
    return v;
  };
  const or = (): Value => {
    let v = and();
    while (take('or')) {
      const w = and();
      v = bool(v) || bool(w);
    }
    return v;
  };
  const v = or();
  if (i !== toks.length) fail(`unexpected token ${i}`);
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// evaluating a table

export interface EvaluatedTensor {
  name: string;
  shape: Shape;
  role: TensorRole;
  dtype: TensorDtype;
  grad: boolean;
  init?: 0 | 1;
}

/** Every tensor of a case: the declarations for `env` (config keys with defaults, and the sizes), loops unrolled,
 * grad.* for the differentiable inputs and the params, next.* when the table's `next` holds. In declaration order. */
export function evaluateLayout(layout: LayoutDecl, env: Env): EvaluatedTensor[] {
  const out: EvaluatedTensor[] = [];
  const expand = (t: TensorDecl, loops: [string, string][], e: Env) => {
    if (loops.length === 0) {
      if (t.when !== undefined && evaluate(t.when, e) !== true) return;
      const name = t.name.replace(/\{(\w+)\}/g, (_, v: string) => String(e[v]));
      const shape = t.shape.map((s) => (typeof s === 'number' ? s : (evaluate(s, e) as number)));
      const grad = t.role === 'param' || t.grad === true;
      out.push({ name, shape, role: t.role, dtype: t.dtype, grad, ...(t.init !== undefined ? { init: t.init } : {}) });
      return;
    }
    const [[v, count], ...rest] = loops;
    const n = evaluate(count, e) as number;
    for (let k = 0; k < n; k++) expand(t, rest, { ...e, [v]: k });
  };
  for (const t of layout.tensors) expand(t, t.for ?? [], env);
  const grads = out.filter((t) => t.grad).map((t) => ({ ...t, name: `grad.${t.name}`, grad: false }));
  const next =
    layout.next !== undefined && evaluate(layout.next, env) === true
      ? out
          .filter((t) => t.role === 'state')
          .map((t) => ({ ...t, name: `next.${t.name.slice('state.'.length)}`, role: 'output' as const }))
      : [];
  return [...out, ...grads, ...next];
}

/** A rule's `expected` text with each {expression} replaced by its value. */
export function expectedText(rule: RuleDecl, env: Env): string {
  return rule.expected.replace(/\{([^{}]+)\}/g, (_, e: string) => String(evaluate(e, env)));
}

/** The same rules, each applying only when `when` holds too (e.g. the vertical decomposition's, in an lm). */
export function rulesWhen(when: string, rules: readonly RuleDecl[]): RuleDecl[] {
  return rules.map((r) => ({ ...r, when: r.when === undefined ? when : `(${when}) and (${r.when})` }));
}

/** The rules of a kind that a config breaks (with `when` holding and `check` false), in declaration order. */
export function brokenRules(rules: readonly RuleDecl[], env: Env): RuleDecl[] {
  return rules.filter(
    (r) => (r.when === undefined || evaluate(r.when, env) === true) && evaluate(r.check, env) !== true,
  );
}
