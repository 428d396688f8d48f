"""The fixture kinds' config declarations, read from schema/kinds.schema.json (made from src/kinds/ by
`npm run kinds:schema`): which keys each kind has, their types, ranges and defaults, and which are required.

    cfg = kinds.effective_config('peer', {...}, where='peer/train_relu')

checks a case's config against its kind's schema and returns it with the defaults filled in, so the writer never
spells a key's range or default itself. Only the subset of JSON Schema the file uses is read (type, minimum,
exclusiveMinimum, maximum, enum, const, default, required, additionalProperties false, the aux coefficients'
object, the peer_layers array, the lm kind's oneOf over its feed-forward kinds). Rules between keys (a perfect
square, a top-k bound) are the fixture loader's: every written file goes through it (`monet check`).
"""

import json
import math
import os

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
