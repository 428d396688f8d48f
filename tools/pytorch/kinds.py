"""The fixture kinds' declarations, read from schema/kinds.schema.json (made from src/kinds/ by
`npm run kinds:schema`): which keys each kind has, their types, ranges and defaults, which are required, the rules
between keys, and the tensors of a case (names, shapes, dtypes) as functions of the config.

    cfg = kinds.effective_config('peer', {...}, where='peer/train_relu')
    kinds.check_rules('peer', cfg, where)
    kinds.check_tensors('peer', cfg, {name: (dtype, shape)}, where)

checks a case's config against its kind's schema and returns it with the defaults filled in, checks the rules
between its keys (`x-monet-rules`: a perfect square, a top-k bound, …), and checks the tensors a writer made
against the layout the schema declares for that config (`x-monet-layout`), so the writer never spells a key's
range, default, rule, or a tensor's name or shape as the contract a second time: its own names and shapes must
agree with these. Only the subset of JSON Schema the file uses is read (type, minimum, exclusiveMinimum, maximum,
enum, const, default, required, additionalProperties false, the aux coefficients' object, the peer_layers array,
the lm kind's oneOf over its feed-forward kinds). The expressions of the layout and the rules are a subset of
Python (the schema's description lists it); evaluate() reads them with the ast module, refusing anything else.

A case's sizes that are not config keys (T tokens; F for topk; B, S for lm) are the config's '_T', '_F', '_B',
'_S' entries.
"""

import ast
import functools

import json
import math
import operator
import os
import re

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'schema', 'kinds.schema.json')


def load_schema(path=SCHEMA_PATH):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


SCHEMA = load_schema()


class ConfigError(ValueError):
    pass


def config_schema(kind, cfg, where):
    """The subschema of a kind's config: $defs[kind], or for `lm` the one of its feed-forward kind."""
    defs = SCHEMA['$defs']
    if kind not in SCHEMA['x-fixture-kinds']:
        raise ConfigError(f'{where}: kind {kind!r} is not one of {SCHEMA["x-fixture-kinds"]}')
    if kind != 'lm':
        return defs[kind]
    ffn = cfg.get('ffn')
    if ffn not in SCHEMA['x-lm-ffn-kinds']:
        raise ConfigError(f'{where}: config.ffn: expected one of {SCHEMA["x-lm-ffn-kinds"]}, found {ffn!r}')
    return defs[f'lm.{ffn}']


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def check_value(key, v, s, where):
    """A ConfigError naming config.<key>, what its schema expects and what was found, unless v satisfies it."""
    def fail(expected):
        raise ConfigError(f'{where}: config.{key}: expected {expected}, found {v!r}')

    t = s['type']
    if t == 'integer' and not _is_int(v):
        fail('an integer')
    if t == 'number' and not _is_number(v):
        fail('a finite number')
    if t in ('integer', 'number'):
        if 'minimum' in s and v < s['minimum']:
            fail(f'>= {s["minimum"]}')
        if 'exclusiveMinimum' in s and v <= s['exclusiveMinimum']:
            fail(f'> {s["exclusiveMinimum"]}')
        if 'maximum' in s and v > s['maximum']:
            fail(f'<= {s["maximum"]}')
    elif t == 'string':
        if 'enum' in s and v not in s['enum']:
            fail(f'one of {s["enum"]}')
        if 'const' in s and v != s['const']:
            fail(repr(s['const']))
    elif t == 'boolean':
        if not isinstance(v, bool):
            fail('true or false')
    elif t == 'object':
        if not isinstance(v, dict):
            fail(f'an object with {s["required"]}')
        for n in s['required']:
            if n not in v:
                fail(f'an object with {s["required"]} ({n!r} missing)')
        for n, x in v.items():
            if n not in s['properties']:
                fail(f'only the keys {list(s["properties"])} ({n!r} is not one)')
            check_value(f'{key}.{n}', x, s['properties'][n], where)
    elif t == 'array':
        if not isinstance(v, list) or len(v) < s['minItems'] or (s['uniqueItems'] and len(set(v)) != len(v)):
            fail(f'a list of at least {s["minItems"]} distinct items')
        for i, x in enumerate(v):
            check_value(f'{key}[{i}]', x, s['items'], where)
    else:
        raise ConfigError(f'{where}: config.{key}: the schema type {t!r} is not one kinds.py reads')


def effective_config(kind, cfg, where):
    """cfg checked against its kind's schema, with every missing key that has a default filled in. Keys starting
    with '_' (the writer's drawing sizes) are passed through unchecked."""
    s = config_schema(kind, cfg, where)
    props = s['properties']
    out = dict(cfg)
    for key, v in cfg.items():
        if key.startswith('_'):
            continue
        if key not in props:
            raise ConfigError(f'{where}: config.{key}: unexpected key (the keys of {s["title"]}: {list(props)})')
        check_value(key, v, props[key], where)
    for key in s['required']:
        if key not in cfg:
            raise ConfigError(f'{where}: config.{key}: required by {s["title"]}, missing')
    for key, p in props.items():
        if key not in out and 'default' in p:
            out[key] = p['default']
    return out


def default(kind, key, ffn=None):
    """The declared default of config.<key> of a kind (of `lm` with feed-forward `ffn`); a ConfigError if none."""
    s = SCHEMA['$defs'][f'lm.{ffn}' if kind == 'lm' else kind]
    p = s['properties'].get(key)
    if p is None or 'default' not in p:
        raise ConfigError(f'{s["title"]}: config.{key} has no declared default')
    return p['default']


# ----------------------------------------------------------------------------------------------------------------
# the layout and the rules: a small subset of Python, evaluated from its syntax tree

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Mod: operator.mod}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
           ast.NotIn: lambda a, b: a not in b}
_FUNCS = {'isqrt': math.isqrt, 'len': len, 'max': max}


def evaluate(src, env):
    """The value of a layout/rule expression over env (config keys, sizes, loop variables)."""
    def ev(n):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float, str)):
            return n.value
        if isinstance(n, ast.Name):
            if n.id not in env:
                raise ConfigError(f'expression {src!r}: no value for {n.id!r}')
            return env[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            return _BINOPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            return not ev(n.operand)
        if isinstance(n, ast.BoolOp):
            vals = [ev(v) for v in n.values]
            return all(vals) if isinstance(n.op, ast.And) else any(vals)
        if isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in _CMPOPS:
            return _CMPOPS[type(n.ops[0])](ev(n.left), ev(n.comparators[0]))
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _FUNCS and len(n.args) == 1
                and not n.keywords):
            return _FUNCS[n.func.id](ev(n.args[0]))
        raise ConfigError(f'expression {src!r}: {ast.dump(n)} is not in the layout language')
    return ev(_parse(src))


@functools.lru_cache(maxsize=None)
def _parse(src):
    return ast.parse(src, mode='eval').body


def _env(cfg):
    """A config's keys (defaults filled in: effective_config) and its sizes ('_T' -> T, …)."""
    return {(k[1:] if k.startswith('_') else k): v for k, v in cfg.items()}


def expected_text(rule, env):
    return re.sub(r'\{([^{}]+)\}', lambda m: str(evaluate(m.group(1), env)), rule['expected'])


def check_rules(kind, cfg, where):
    """A ConfigError naming config.<key> and what was expected, for the first rule of the kind cfg breaks."""
    env = _env(cfg)
    for rule in config_schema(kind, cfg, where)['x-monet-rules']:
        if 'when' in rule and evaluate(rule['when'], env) is not True:
            continue
        if evaluate(rule['check'], env) is not True:
            key = rule['key']
            raise ConfigError(f'{where}: config.{key}: expected {expected_text(rule, env)}, found {cfg.get(key)!r} '
                              f'(rule {rule["name"]})')


def layout(kind, cfg, where):
    """{name: (shape tuple, dtype class, role)} of every tensor of a case of this config (defaults filled in, sizes
    as '_T', …): the schema's x-monet-layout, loops unrolled, with grad.* and next.*."""
    decl = config_schema(kind, cfg, where)['x-monet-layout']
    env = _env(cfg)
    out = {}

    def expand(t, loops, e):
        if loops:
            (var, count), rest = loops[0], loops[1:]
            for v in range(evaluate(count, e)):
                expand(t, rest, {**e, var: v})
            return
        if 'when' in t and evaluate(t['when'], e) is not True:
            return
        name = re.sub(r'\{(\w+)\}', lambda m: str(e[m.group(1)]), t['name'])
        shape = tuple(d if isinstance(d, int) else evaluate(d, e) for d in t['shape'])
        out[name] = (shape, t['dtype'], t['role'])
        if t['role'] == 'param' or t.get('grad'):
            out['grad.' + name] = (shape, t['dtype'], 'grad')

    for t in decl['tensors']:
        expand(t, t.get('for', []), env)
    if 'next' in decl and evaluate(decl['next'], env) is True:
        for name, (shape, dt, role) in list(out.items()):
            if role == 'state':
                out['next.' + name[len('state.'):]] = (shape, dt, 'next')
    return out


DTYPES = {'real': ('F64', 'F32'), 'int': ('I32', 'I64'), 'bool': ('U8',)}


def check_tensors(kind, cfg, tensors, where):
    """A ValueError unless `tensors` ({name: (dtype, shape)}) are exactly the case's layout: every declared tensor
    but the optional outputs present, nothing else, each with the declared shape (a scalar may be (1,)) and a dtype
    of its class."""
    want = layout(kind, cfg, where)
    bad = [f'{n} is not in the layout of {kind}' for n in tensors if n not in want]
    bad += [f'{n} {want[n][0]} missing' for n in want if n not in tensors and want[n][2] != 'optional-output']
    for n, (dt, shape) in tensors.items():
        if n not in want:
            continue
        w_shape, w_dt, _ = want[n]
        if tuple(shape) != w_shape and not (w_shape == () and tuple(shape) == (1,)):
            bad.append(f'{n}: shape {tuple(shape)}, the layout says {w_shape}')
        if dt not in DTYPES[w_dt]:
            bad.append(f'{n}: dtype {dt}, the layout says {w_dt} ({" or ".join(DTYPES[w_dt])})')
    if bad:
        raise ValueError(f'{where}: the tensors disagree with schema/kinds.schema.json: ' + '; '.join(bad))


def shapes(kind, cfg, where=''):
    """{name: shape tuple} of every tensor of a case: the layout of the config with its defaults filled in (the
    writer draws each tensor with the shape read here)."""
    eff = effective_config(kind, cfg, where or kind)
    return {n: shape for n, (shape, _, _) in layout(kind, eff, where or kind).items()}
