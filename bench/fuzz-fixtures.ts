// Seeded fuzz of `monet check` on mutated fixtures (issue 19, fixture half; results in docs/robustness.md).
//
//   node --import tsx --import ./src/backend/webgpu/register-wgsl.mjs bench/fuzz-fixtures.ts \
//     [--cases 10000] [--seed 17] [--workers 2] [--timeout-ms 60000] [--backend reference] [--only N] [--json F]
//
// Each case takes one committed fixture (fixtures/**), applies one mutation drawn from the case's own seeded
// generator (case N is replayed alone with --only N) and runs `monet check --backend <b> <file>` in a worker
// thread: the CLI's own entry point (src/cli/main.ts), its exit code and everything it prints. A case is a
// violation when
//   - it hangs (no answer within --timeout-ms; the worker is ended and replaced) or its worker dies (out of memory),
//   - `main` throws, or what it prints holds a stack trace or an internal error ("the loader failed on this file",
//     "backend … threw": the loader let through a file the runner cannot handle),
//   - the exit code is not 0, 1 or 2,
//   - a damaged file passes (exit 0): one whose bytes were changed after it was written (its stored checksum kept)
//     and whose verdict-relevant content (a tensor, format, kind, config, objective or min_margin) differs,
//   - a file whose expected value was set clearly wrong (off by far more than any tolerance, or NaN) passes, with
//     or without a recomputed checksum.
// Mutations: bit flips anywhere, truncation, appended bytes, a wrong header length, header fields (dtype, shape,
// data_offsets) set to hostile values, config keys set to hostile values / removed / misspelled / duplicated,
// metadata (format, kind, min_margin, objective, checksum) edited or removed, tensors dropped, renamed, retyped,
// reshaped, or with one value changed; the checksum of an edited file is kept (damage), recomputed (a hostile
// writer) or dropped (a writer without one).

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { fixtureChecksum } from '../src/fixtures/checksum.ts';
import { parseFixture } from '../src/fixtures/format.ts';
import { FIXTURE_KINDS } from '../src/kinds/index.ts';
import { parseSafetensors, serializeSafetensors } from '../src/safetensors.ts';
import type { Tensor, TensorMap } from '../src/tensor.ts';

// ---------------------------------------------------------------------------------------------------------------
// Seeded generator (its own, so a case never depends on project code)

function rng(seed: number, stream: number) {
  let s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35)) >>> 0;
  const u32 = (): number => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    u32,
    int: (n: number): number => u32() % n,
    pick<T>(xs: readonly T[]): T {
      return xs[u32() % xs.length];
    },
    chance: (p: number): boolean => u32() / 2 ** 32 < p,
  };
}
type Rng = ReturnType<typeof rng>;

// ---------------------------------------------------------------------------------------------------------------
// Mutations

interface Source {
  path: string;
  bytes: Uint8Array;
  metadata: Record<string, string>;
  tensors: TensorMap;
  /** Results the checker compares (a clearly wrong value there must not pass). */
  compared: Set<string>;
}

type ChecksumMode = 'keep' | 'recompute' | 'drop';

interface Mutant {
  op: string;
  detail: string;
  bytes: Uint8Array;
  /** Changed after writing with the checksum kept: must never pass when its content differs. */
  damagedCandidate: boolean;
  /** An expected value set clearly wrong: must never pass. */
  wrongResult: boolean;
}

const HOSTILE_VALUES: unknown[] = [
  0,
  -1,
  1,
  1.5,
  -0.5,
  2 ** 31,
  2 ** 32 + 1,
  2 ** 53,
  1e308,
  -1e308,
  1e-320,
  '',
  'x',
  '8',
  null,
  true,
  [],
  {},
  [[[[1]]]],
  { a: 1 },
  'relu',
  'swiglu',
  'hd',
  'vd',
];
const HOSTILE_STRINGS = ['', ' ', '0', '-1', 'NaN', 'Infinity', '1e400', '0x10', ' 0.1', '1e-3 ', '{}', 'null'];
const DTYPES = ['F64', 'F32', 'I64', 'I32', 'U8', 'BF16', 'F16', 'I16', 'X', '', 1, null];

function headerOf(bytes: Uint8Array): { json: Record<string, unknown>; data: Uint8Array } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return {
    json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))),
    data: bytes.subarray(8 + len),
  };
}

function assemble(headerText: string, data: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(headerText + ' '.repeat((8 - (headerText.length % 8)) % 8));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

function cloneTensors(ts: TensorMap): TensorMap {
  const out: TensorMap = new Map();
  for (const [n, t] of ts) out.set(n, { dtype: t.dtype, shape: t.shape.slice(), data: t.data.slice() } as Tensor);
  return out;
}

function seal(meta: Record<string, string>, tensors: TensorMap, mode: ChecksumMode): Uint8Array {
  const m = { ...meta };
  if (mode === 'drop') delete m.checksum;
  if (mode === 'recompute') m.checksum = fixtureChecksum(m, tensors);
  return serializeSafetensors(tensors, m);
}

function byteLevel(r: Rng, s: Source): Mutant {
  const b = s.bytes.slice();
  const kind = r.int(4);
  const hlen = Number(new DataView(b.buffer).getBigUint64(0, true));
  if (kind === 0) {
    const n = 1 + r.int(4);
    const at: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = r.chance(0.5) ? 8 + r.int(hlen) : 8 + hlen + r.int(b.length - 8 - hlen);
      b[p] ^= 1 << r.int(8);
      at.push(p);
    }
    return { op: 'bitflip', detail: `bytes ${at.join(',')}`, bytes: b, damagedCandidate: true, wrongResult: false };
  }
  if (kind === 1) {
    const n = r.int(b.length);
    return { op: 'truncate', detail: `to ${n} B`, bytes: b.subarray(0, n), damagedCandidate: true, wrongResult: false };
  }
  if (kind === 2) {
    const extra = new Uint8Array(1 + r.int(64)).map(() => (r.chance(0.5) ? 0 : r.int(256)));
    const out = new Uint8Array(b.length + extra.length);
    out.set(b);
    out.set(extra, b.length);
    return { op: 'append', detail: `${extra.length} B`, bytes: out, damagedCandidate: true, wrongResult: false };
  }
  const lens = [0n, 1n, 7n, BigInt(hlen - 1), BigInt(hlen + 1), BigInt(hlen + 8), 2n ** 32n, 2n ** 53n, 2n ** 64n - 1n];
  const v = r.pick(lens);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return { op: 'header-length', detail: String(v), bytes: b, damagedCandidate: true, wrongResult: false };
}

function headerField(r: Rng, s: Source): Mutant {
  const { json, data } = headerOf(s.bytes);
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  const name = r.pick(names);
  const e = json[name] as { dtype: unknown; shape: unknown[]; data_offsets: unknown[] };
  const field = r.int(3);
  let detail: string;
  if (field === 0) {
    e.dtype = r.pick(DTYPES);
    detail = `${name}.dtype = ${JSON.stringify(e.dtype)}`;
  } else if (field === 1) {
    const v = r.pick<unknown>([0, -1, 1.5, 2 ** 31, 1e9, 2 ** 53, '3', null]);
    const shape = e.shape.slice();
    const how = r.int(3);
    if (how === 0 && shape.length) shape[r.int(shape.length)] = v;
    else if (how === 1) shape.push(r.pick([1, 2, v]));
    else shape.pop();
    e.shape = shape;
    detail = `${name}.shape = ${JSON.stringify(shape)}`;
  } else {
    const o = e.data_offsets.slice() as number[];
    const other = json[r.pick(names)] as { data_offsets: number[] };
    const how = r.int(4);
    if (how === 0) e.data_offsets = [o[1], o[0]];
    else if (how === 1) e.data_offsets = other.data_offsets.slice();
    else if (how === 2) e.data_offsets = [o[0] + 8, o[1] + 8];
    else e.data_offsets = [o[0], r.pick([2 ** 53, 2 ** 32, -8, o[1] - 1, o[1] + 1] as number[])];
    detail = `${name}.data_offsets = ${JSON.stringify(e.data_offsets)}`;
  }
  return {
    op: 'header-field',
    detail,
    bytes: assemble(JSON.stringify(json), data),
    damagedCandidate: true,
    wrongResult: false,
  };
}

function configEdit(r: Rng, s: Source, mode: ChecksumMode): Mutant {
  const meta = { ...s.metadata };
  const cfg = JSON.parse(meta.config) as Record<string, unknown>;
  const keys = Object.keys(cfg);
  const key = r.pick(keys);
  const how = r.int(5);
  let detail: string;
  if (how <= 1) {
    cfg[key] = r.pick(HOSTILE_VALUES);
    detail = `config.${key} = ${JSON.stringify(cfg[key])}`;
  } else if (how === 2) {
    delete cfg[key];
    detail = `config.${key} removed`;
  } else if (how === 3) {
    const typo = r.chance(0.5) ? `${key}s` : key.replace(/_/, '');
    cfg[typo === key ? `${key}_` : typo] = cfg[key];
    if (r.chance(0.5)) delete cfg[key];
    detail = `config key ${key} misspelled`;
  }
  meta.config = JSON.stringify(cfg);
  if (how === 4) {
    meta.config = meta.config.replace(/^\{/, `{${JSON.stringify(key)}:${JSON.stringify(r.pick(HOSTILE_VALUES))},`);
    detail = `config.${key} twice`;
  }
  return {
    op: 'config',
    detail: `${detail!} (checksum ${mode})`,
    bytes: seal(meta, s.tensors, mode),
    damagedCandidate: mode === 'keep',
    wrongResult: false,
  };
}

function metadataEdit(r: Rng, s: Source, mode: ChecksumMode): Mutant {
  const meta = { ...s.metadata };
  const key = r.pick(['format', 'kind', 'min_margin', 'objective', 'checksum', 'config']);
  let detail: string;
  const how = r.int(3);
  if (how === 0) {
    delete meta[key];
    detail = `${key} removed`;
  } else if (key === 'format') {
    meta.format = r.pick([
      'monet-ts-fixture/01',
      'monet-ts-fixture/2',
      'monet-ts-fixture',
      'x/1',
      '',
      ' monet-ts-fixture/1',
    ]);
    detail = `format = ${JSON.stringify(meta.format)}`;
  } else if (key === 'kind') {
    meta.kind = r.pick([...FIXTURE_KINDS, 'x']); // every kind, and one that is none
    detail = `kind = ${meta.kind}`;
  } else if (key === 'checksum') {
    meta.checksum = r.pick(['', 'crc32:', 'CRC32:00000000', 'crc32:0000000g', `crc32:${r.u32().toString(16)}`]);
    detail = `checksum = ${JSON.stringify(meta.checksum)}`;
    mode = 'keep';
  } else if (key === 'config') {
    meta.config = r.pick(['', '[]', 'null', '{', '{}', '"x"', '[[[[[[]]]]]]', `${meta.config} `, `${meta.config}x`]);
    detail = `config = ${JSON.stringify(meta.config.slice(0, 30))}`;
  } else {
    meta[key] = r.pick(HOSTILE_STRINGS);
    detail = `${key} = ${JSON.stringify(meta[key])}`;
  }
  return {
    op: 'metadata',
    detail: `${detail} (checksum ${mode})`,
    bytes: seal(meta, s.tensors, mode),
    damagedCandidate: mode === 'keep',
    wrongResult: false,
  };
}

const REAL_OFFSETS = [Number.NaN, Number.POSITIVE_INFINITY, 1, -1, 1e3];

function tensorEdit(r: Rng, s: Source, mode: ChecksumMode): Mutant {
  const tensors = cloneTensors(s.tensors);
  const names = [...tensors.keys()];
  const name = r.pick(names);
  const t = tensors.get(name)!;
  const how = r.int(7);
  let detail: string;
  let wrongResult = false;
  if (how === 0) {
    tensors.delete(name);
    detail = `${name} dropped`;
  } else if (how === 1) {
    const to = r.pick([
      name.replace(/^[a-z]+\./, 'out.'),
      name.replace(/^[a-z]+\./, 'grad.'),
      `${name}x`,
      name.replace(/\.\d+\./, '.99.'),
      'x',
      '',
    ]);
    tensors.delete(name);
    tensors.set(to, t);
    detail = `${name} renamed ${to}`;
  } else if (how === 2) {
    const dtype = r.pick(['F64', 'F32', 'I64', 'I32', 'U8'] as const);
    const n = t.data.length;
    const data =
      dtype === 'F64'
        ? Float64Array.from({ length: n }, (_, i) => Number(t.data[i]))
        : dtype === 'F32'
          ? Float32Array.from({ length: n }, (_, i) => Number(t.data[i]))
          : dtype === 'I64'
            ? BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(Number(t.data[i]))))
            : dtype === 'I32'
              ? Int32Array.from({ length: n }, (_, i) => Number(t.data[i]))
              : Uint8Array.from({ length: n }, (_, i) => Number(t.data[i]));
    tensors.set(name, { dtype, shape: t.shape, data } as Tensor);
    detail = `${name} ${t.dtype} → ${dtype}`;
  } else if (how === 3) {
    const n = t.data.length;
    const shape = r.pick([[n], [1, n], t.shape.slice().reverse(), [...t.shape, 1], n > 1 ? [n - 1] : [0]]);
    const m = shape.reduce((a, b) => a * b, 1);
    tensors.set(name, { dtype: t.dtype, shape, data: t.data.slice(0, m) } as Tensor);
    detail = `${name} shape [${t.shape}] → [${shape}]`;
  } else {
    // one value changed
    if (t.data.length === 0) return tensorEdit(r, s, mode);
    const i = r.int(t.data.length);
    const d = t.data;
    if (d instanceof BigInt64Array) {
      d[i] = r.pick([-1n, 2n ** 31n, 2n ** 62n, d[i] + 1n]);
      detail = `${name}[${i}] = ${d[i]}`;
    } else if (d instanceof Float64Array || d instanceof Float32Array) {
      const big = how >= 5;
      const before = d[i];
      if (big) d[i] = r.pick(REAL_OFFSETS) + before * (1 + r.int(3));
      else {
        const bytes = new Uint8Array(d.buffer, d.byteOffset + i * d.BYTES_PER_ELEMENT, d.BYTES_PER_ELEMENT);
        bytes[0] ^= 1; // the lowest mantissa bit
      }
      const off = Math.abs(d[i] - before);
      // clearly wrong: NaN/∞, or off by ≥ 0.5 and ≥ 10 % of the value (far outside every preset's tolerance)
      wrongResult = s.compared.has(name) && (!Number.isFinite(d[i]) || (off >= 0.5 && off >= 0.1 * Math.abs(before)));
      detail = `${name}[${i}] ${before} → ${d[i]}`;
    } else {
      d[i] = r.pick([-1, 255, 2 ** 31 - 1, Number(d[i]) + 1]);
      wrongResult = s.compared.has(name) && d[i] !== s.tensors.get(name)!.data[i];
      detail = `${name}[${i}] = ${d[i]}`;
    }
  }
  return {
    op: 'tensor',
    detail: `${detail} (checksum ${mode})`,
    bytes: seal(s.metadata, tensors, mode),
    damagedCandidate: mode === 'keep',
    wrongResult,
  };
}

function mutate(r: Rng, s: Source): Mutant {
  const mode = r.pick(['keep', 'recompute', 'drop'] as const);
  const op = r.int(100);
  if (op < 25) return byteLevel(r, s);
  if (op < 40) return headerField(r, s);
  if (op < 60) return configEdit(r, s, mode);
  if (op < 70) return metadataEdit(r, s, mode);
  return tensorEdit(r, s, mode);
}

const VERDICT_KEYS = ['format', 'kind', 'config', 'objective', 'min_margin'];

/** Does the mutant differ from its source in anything that decides a verdict? (Unreadable counts as differing.) */
function contentDiffers(s: Source, bytes: Uint8Array): boolean {
  let m: ReturnType<typeof parseSafetensors>;
  try {
    m = parseSafetensors(bytes, 'mutant');
  } catch {
    return true;
  }
  if (VERDICT_KEYS.some((k) => m.metadata[k] !== s.metadata[k])) return true;
  if (m.tensors.size !== s.tensors.size) return true;
  for (const [n, t] of s.tensors) {
    const u = m.tensors.get(n);
    if (!u || u.dtype !== t.dtype || u.shape.join() !== t.shape.join()) return true;
    const a = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const b = new Uint8Array(u.data.buffer, u.data.byteOffset, u.data.byteLength);
    if (a.length !== b.length || a.some((v, i) => v !== b[i])) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Worker: one `monet check` per message

interface Job {
  id: number;
  bytes: Uint8Array;
}
interface Answer {
  id: number;
  code: number | null;
  out: string;
  threw?: string;
  ms: number;
}

async function workerMain(): Promise<void> {
  const { dir, backend } = workerData as { dir: string; backend: string };
  const { main } = await import('../src/cli/main.ts');
  const path = join(dir, 'case.safetensors');
  parentPort!.on('message', async (job: Job) => {
    writeFileSync(path, job.bytes);
    const lines: string[] = [];
    const log = console.log;
    const error = console.error;
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    console.error = (...a: unknown[]) => void lines.push(a.join(' '));
    const t0 = performance.now();
    let code: number | null = null;
    let threw: string | undefined;
    try {
      code = await main(['check', '--backend', backend, path]);
    } catch (e) {
      threw = (e as Error)?.stack ?? String(e);
    } finally {
      console.log = log;
      console.error = error;
    }
    const answer: Answer = { id: job.id, code, out: lines.join('\n'), threw, ms: performance.now() - t0 };
    parentPort!.postMessage(answer);
  });
  parentPort!.postMessage('ready');
}

// ---------------------------------------------------------------------------------------------------------------
// Driver

interface Options {
  cases: number;
  seed: number;
  workers: number;
  timeoutMs: number;
  backend: string;
  only?: number;
  json?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { cases: 10000, seed: 17, workers: 2, timeoutMs: 60000, backend: 'reference' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!/^\d+$/.test(v ?? '')) throw new Error(`${a}: expected a whole number ≥ 0, found ${JSON.stringify(v)}`);
      i++;
      return n;
    };
    if (a === '--cases') o.cases = num();
    else if (a === '--seed') o.seed = num();
    else if (a === '--workers') o.workers = Math.max(1, num());
    else if (a === '--timeout-ms') o.timeoutMs = num();
    else if (a === '--only') o.only = num();
    else if (a === '--backend' && v) {
      o.backend = v;
      i++;
    } else if (a === '--json' && v) {
      o.json = v;
      i++;
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function loadSources(): Source[] {
  const root = join(import.meta.dirname, '..', 'fixtures');
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  return files.map((f) => {
    const path = join(root, f);
    const bytes = new Uint8Array(readFileSync(path));
    const { metadata, tensors } = parseSafetensors(bytes, path);
    const fx = parseFixture(bytes, path);
    const compared = new Set([...fx.expected.keys()].filter((n) => !fx.optional.has(n)));
    return { path: `fixtures/${f}`, bytes, metadata, tensors, compared };
  });
}

interface Verdict {
  id: number;
  source: string;
  op: string;
  detail: string;
  code: number | null;
  ms: number;
  damaged: boolean;
  wrongResult: boolean;
  problems: string[];
}

const STACK = /\n\s+at .*(:\d+:\d+\)?|<anonymous>)$/m;

function judge(m: Mutant, damaged: boolean, a: Answer | 'hang' | string): string[] {
  if (a === 'hang') return ['hang'];
  if (typeof a === 'string') return [`worker died: ${a}`];
  const p: string[] = [];
  if (a.threw) p.push(`main threw: ${a.threw.split('\n')[0]}`);
  if (a.code !== null && ![0, 1, 2].includes(a.code)) p.push(`exit ${a.code}`);
  if (STACK.test(a.out)) p.push('stack trace printed');
  if (/the loader failed on this file/.test(a.out)) p.push('internal loader error');
  if (/backend '[^']+' threw/.test(a.out)) p.push('runner threw on a file the loader accepted');
  if (a.code === 0 && damaged) p.push('damaged file passed');
  if (a.code === 0 && m.wrongResult) p.push('clearly wrong expected value passed');
  return p;
}

async function driver(o: Options): Promise<void> {
  const sources = loadSources();
  const ids = o.only !== undefined ? [o.only] : Array.from({ length: o.cases }, (_, i) => i);
  const base = join(tmpdir(), `monet-fuzz-${process.pid}`);
  const verdicts: Verdict[] = [];
  const pending = [...ids];
  const started = performance.now();
  const load0 = loadavg()[0];
  let done = 0;

  const runOne = async (slot: number): Promise<void> => {
    const dir = join(base, `w${slot}`);
    mkdirSync(dir, { recursive: true });
    let w = await spawn(dir, o.backend);
    while (pending.length) {
      const id = pending.shift()!;
      const r = rng(o.seed, id);
      const s = r.pick(sources);
      const m = mutate(r, s);
      const damaged = m.damagedCandidate && contentDiffers(s, m.bytes);
      const a = await ask(w, { id, bytes: m.bytes }, o.timeoutMs);
      if (typeof a !== 'object') {
        await w.terminate();
        w = await spawn(dir, o.backend);
      }
      const code = typeof a === 'object' ? a.code : null;
      const ms = typeof a === 'object' ? a.ms : o.timeoutMs;
      const problems = judge(m, damaged, a);
      verdicts.push({
        id,
        source: s.path,
        op: m.op,
        detail: m.detail,
        code,
        ms,
        damaged,
        wrongResult: m.wrongResult,
        problems,
      });
      if (o.only !== undefined && typeof a === 'object') console.log(a.out);
      if (++done % 1000 === 0) {
        const s = (performance.now() - started) / 1000;
        console.log(`${done} / ${ids.length} cases, ${s.toFixed(0)} s`);
      }
    }
    await w.terminate();
  };
  await Promise.all(Array.from({ length: o.workers }, (_, i) => runOne(i)));
  rmSync(base, { recursive: true, force: true });
  report(o, verdicts, (performance.now() - started) / 1000, load0, sources.length);
}

function spawn(dir: string, backend: string): Promise<Worker> {
  // A worker does not inherit the parent's module hooks: it registers tsx and the WGSL text loader itself.
  const prelude = `(async () => {
    (await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();
    await import(${JSON.stringify(new URL('../src/backend/webgpu/register-wgsl.mjs', import.meta.url).href)});
    await import(${JSON.stringify(import.meta.url)});
  })()`;
  const w = new Worker(prelude, {
    eval: true,
    workerData: { dir, backend },
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb: 2048 },
    stdout: true,
    stderr: true,
  });
  w.stdout.resume();
  w.stderr.resume();
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve(w));
    w.once('error', reject);
  });
}

function ask(w: Worker, job: Job, timeoutMs: number): Promise<Answer | 'hang' | string> {
  return new Promise((resolve) => {
    const done = (v: Answer | 'hang' | string) => {
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
      resolve(v);
    };
    const onMessage = (a: Answer) => done(a);
    const onError = (e: Error) => done(`${e.name}: ${e.message}`);
    const onExit = (c: number) => done(`exited ${c}`);
    const timer = setTimeout(() => done('hang'), timeoutMs);
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    w.postMessage(job);
  });
}

function report(o: Options, vs: Verdict[], seconds: number, load0: number, nSources: number): void {
  vs.sort((a, b) => a.id - b.id);
  const ops = [...new Set(vs.map((v) => v.op))].sort();
  const codes = ['0', '1', '2', 'other'];
  const key = (c: number | null) => (c === 0 || c === 1 || c === 2 ? String(c) : 'other');
  console.log(`\nfixture fuzz: ${vs.length} cases from ${nSources} fixtures, seed ${o.seed}, backend ${o.backend}`);
  console.log(`${'mutation'.padEnd(14)}${codes.map((c) => ` exit ${c}`.padStart(11)).join('')}${'total'.padStart(8)}`);
  for (const op of [...ops, 'all']) {
    const sel = vs.filter((v) => op === 'all' || v.op === op);
    const row = codes.map((c) => String(sel.filter((v) => key(v.code) === c).length).padStart(11)).join('');
    console.log(`${op.padEnd(14)}${row}${String(sel.length).padStart(8)}`);
  }
  const exits = (sel: Verdict[]) =>
    codes
      .map((c) => `exit ${c} ${sel.filter((v) => key(v.code) === c).length}`)
      .filter((t) => !t.endsWith(' 0'))
      .join(', ');
  const damaged = vs.filter((v) => v.damaged);
  const wrong = vs.filter((v) => v.wrongResult);
  console.log(`damaged after writing (checksum kept, content changed): ${damaged.length} (${exits(damaged)})`);
  console.log(`an expected value clearly wrong: ${wrong.length} (${exits(wrong)})`);
  const bad = vs.filter((v) => v.problems.length);
  const kinds = new Map<string, number>();
  for (const v of bad) for (const p of v.problems) kinds.set(p.split(':')[0], (kinds.get(p.split(':')[0]) ?? 0) + 1);
  const slowest = vs.reduce((a, b) => (b.ms > a.ms ? b : a), vs[0]);
  console.log(
    `slowest case ${slowest.id} (${slowest.op}): ${slowest.ms.toFixed(0)} ms; ` +
      `${seconds.toFixed(0)} s in all on ${o.workers} worker(s), ${availableParallelism()} CPUs, ` +
      `load average ${load0.toFixed(1)} at the start and ${loadavg()[0].toFixed(1)} at the end`,
  );
  for (const v of bad.slice(0, 30)) {
    console.log(`  case ${v.id} ${v.source} ${v.op} ${v.detail}: exit ${v.code}; ${v.problems.join('; ')}`);
  }
  console.log(
    `violations: ${bad.length}` +
      (kinds.size ? ` (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})` : '') +
      ' — hangs, worker deaths, throws, stack traces, internal errors, exits outside 0/1/2, damaged or clearly ' +
      'wrong files that passed',
  );
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ options: o, seconds, verdicts: vs }, null, 1)}\n`);
  console.log(`${vs.length - bad.length} passed, ${bad.length} failed`);
  process.exitCode = bad.length ? 1 : 0;
}

if (isMainThread) {
  await driver(parseArgs(process.argv.slice(2)));
} else {
  await workerMain();
}
